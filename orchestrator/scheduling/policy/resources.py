"""A trial's resource request as Ray sees it: one placement-group bundle on one node.

One bundle keeps a multi-GPU trial's GPUs on a single node (MirroredStrategy needs them
together). Memory is in bytes for Ray.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.gputypes import LABEL, accepted_types, type_matches
from orchestrator.spec.model import Resources


def bundle(res: Resources) -> dict[str, float]:
    b: dict[str, float] = {"CPU": float(res.cpus)}
    if res.gpus:
        b["GPU"] = float(res.gpus)
    if res.memory_gb:
        b["memory"] = float(res.memory_gb) * 1024**3
    return b


def label_selector(
    res: Resources, nodes: Sequence[NodeInfo], types: Sequence[str] | None = None
) -> dict[str, str] | None:
    """Ray label selector for the trial's acceptable GPU types, or None for any type.

    Node labels may carry a detected full name ('a100-sxm4-80gb') where the user wrote
    'A100': the selector lists every label value in the cluster that the request accepts.
    Ray cannot express an order of preference: orch binds a trial to one type at launch
    (scheduling/adapters/placement.py) by passing `types`, the label values to allow (also how a
    type the trial ran out of memory on is left out)."""
    if res.gpus and types is not None:
        values = sorted(set(types))
        return {LABEL: values[0] if len(values) == 1 else f"in({','.join(values)})"}
    accepted = accepted_types(res)
    if not res.gpus or accepted is None:
        return None
    values = sorted({n.gpu_type for n in nodes if type_matches(n.gpu_type, accepted)} | accepted)
    return {LABEL: values[0] if len(values) == 1 else f"in({','.join(values)})"}
