"""Scheduling adapters: where the policy meets Ray (Tune callbacks, the tuner, Ray Jobs,
node inventory, the address and its token, stop requests).
"""
