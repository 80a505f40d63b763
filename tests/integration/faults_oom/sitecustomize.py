"""A GPU out of memory on one GPU type only, for the OOM-move test, with no hook in orch
itself: the test puts this folder on PYTHONPATH, so every Python process of the job (the
driver, Ray's workers) imports it at start-up. With ORCH_TEST_OOM_TYPE=<type label> set, a
trial whose node carries that `orch/gpu-type` label trains and reports its first epoch, then
raises what TensorFlow raises when a GPU runs out of memory (tf.errors.ResourceExhaustedError
naming the GPU device); on any other node it trains for real. Each attempt appends
"<key> <label>" to ORCH_TEST_ATTEMPTS. Without ORCH_TEST_OOM_TYPE it does nothing."""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any

_OOM_TYPE = os.environ.get("ORCH_TEST_OOM_TYPE")
_TARGET = "orchestrator.training.loop"


def _node_label() -> str:
    import ray

    label = ray.get_runtime_context().get_node_labels().get("orch/gpu-type") or ""
    return label[0] if isinstance(label, list) else str(label)


def _oom() -> BaseException:
    import tensorflow as tf

    return tf.errors.ResourceExhaustedError(
        None,
        None,
        "OOM when allocating tensor with shape[64,6,28,28] and type float on "
        "/job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc "
        "(injected by the test)",
    )


def _wrap(run_trial: Callable[..., Any]) -> Callable[..., Any]:
    def run_trial_or_oom(trial: Any, **kwargs: Any) -> Any:
        label = _node_label()
        log = os.environ.get("ORCH_TEST_ATTEMPTS")
        if log:
            with open(log, "a") as f:
                f.write(f"{trial.key} {label}\n")
        if label == _OOM_TYPE:
            report = kwargs["report"]

            def report_then_oom(metrics: Any) -> None:
                report(metrics)  # the first epoch is checkpointed and reported: then OOM
                raise _oom()

            kwargs["report"] = report_then_oom
        return run_trial(trial, **kwargs)

    return run_trial_or_oom


class _Patch(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            module.run_trial = _wrap(module.run_trial)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if _OOM_TYPE:
    sys.meta_path.insert(0, _Patch())
