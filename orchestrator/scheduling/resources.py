"""A trial's resource request as Ray sees it: one placement-group bundle on one node.

One bundle keeps a multi-GPU trial's GPUs on a single node (MirroredStrategy needs them
together). Memory is in bytes for Ray.
"""

from __future__ import annotations

from typing import Any

from orchestrator.spec.model import Resources


def bundle(res: Resources) -> dict[str, float]:
    b: dict[str, float] = {"CPU": float(res.cpus)}
    if res.gpus:
        b["GPU"] = float(res.gpus)
    if res.memory_gb:
        b["memory"] = float(res.memory_gb) * 1024**3
    return b


def placement_group_factory(res: Resources) -> Any:
    from ray.tune import PlacementGroupFactory

    return PlacementGroupFactory([bundle(res)])
