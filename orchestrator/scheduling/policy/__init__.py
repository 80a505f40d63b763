"""Scheduling policy: pure decisions (order, feasibility, cost, GPU types, placement).

No Ray, TensorFlow, MLflow or SQLAlchemy at module level: `orch plan` and `orch validate`
run on it in about a second, and every rule here is unit-tested without a cluster.
"""
