"""Fault injection for end-to-end tests, with no hook in orch itself: a test puts this
folder on PYTHONPATH, so every Python process of the job (the driver, Ray's workers)
imports it at start-up. With ORCH_TEST_RAISE=<TensorFlow error class name> set, the
trial's training (orchestrator.training.loop.run_trial) raises that error at once, and
each attempt appends a line to ORCH_TEST_ATTEMPTS (a file), so the test can count them.
Without ORCH_TEST_RAISE it does nothing."""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import time

_ERROR = os.environ.get("ORCH_TEST_RAISE")
_TARGET = "orchestrator.training.loop"


def _failing_run_trial(trial, **_kwargs):  # type: ignore[no-untyped-def]
    import tensorflow as tf

    log = os.environ.get("ORCH_TEST_ATTEMPTS")
    if log:
        with open(log, "a") as f:
            f.write(f"{trial.key} {os.getpid()} {time.time()}\n")
    raise getattr(tf.errors, _ERROR)(None, None, f"injected by the test: {_ERROR} (OOM)")


class _Patch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):  # type: ignore[no-untyped-def]
            run(module)
            module.run_trial = _failing_run_trial

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if _ERROR:
    sys.meta_path.insert(0, _Patch())
