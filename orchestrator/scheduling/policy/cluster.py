"""What a cluster offers: one NodeInfo per node, parsed from an entry of ray.nodes() (pure;
scheduling/adapters/inventory.py `snapshot` asks the connected cluster)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.scheduling.policy.gputypes import CPU, LABEL, MEMORY_LABEL, RESOURCE_PREFIX


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    address: str
    cpus: float
    gpus: float
    memory_gb: float
    gpu_type: str  # slug; "cpu" for a node without GPUs
    alive: bool = True
    source: str = "node"  # "node": running now; "autoscaler": a type that could be added
    gpu_memory_gb: float | None = None  # per GPU, from the node's label; None: by its type


def node_from_ray(n: dict[str, Any]) -> NodeInfo:
    res = n.get("Resources", {})
    labels = n.get("Labels") or {}
    gpu_type = labels.get(LABEL)
    if not gpu_type:
        typed = [k.removeprefix(RESOURCE_PREFIX) for k in res if k.startswith(RESOURCE_PREFIX)]
        gpu_type = typed[0] if typed else (None if res.get("GPU") else CPU)
    return NodeInfo(
        node_id=str(n.get("NodeID", "")),
        address=str(n.get("NodeManagerAddress", "")),
        cpus=float(res.get("CPU", 0)),
        gpus=float(res.get("GPU", 0)),
        memory_gb=float(res.get("memory", 0)) / 1024**3,
        gpu_type=gpu_type or "unlabelled",
        alive=bool(n.get("Alive", True)),
        gpu_memory_gb=_number(labels.get(MEMORY_LABEL)),
    )


def _number(text: Any) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
