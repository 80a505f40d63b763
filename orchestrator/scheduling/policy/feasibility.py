"""Can each trial ever run? Compared with the cluster's nodes and the node types an
autoscaler could add (pure). Tune would otherwise wait forever on an impossible request.

Besides GPUs, CPUs and memory, a GPU trial must fit in GPU memory: its peak estimated by
the cost model (spec/cost.py) against each acceptable node's memory per GPU (its label, or
its type's published size), times the trial's fraction when it shares a GPU (each packed
trial gets a hard limit of its fraction, training/hardware.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from orchestrator.errors import InfeasibleError
from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.gputypes import (
    CPU,
    accepted_types,
    memory_gb,
    slug,
    type_matches,
)
from orchestrator.spec.model import NodeType, Resources, TrialSpec


def nodes_from_types(types: Iterable[NodeType], *, declared: bool = False) -> list[NodeInfo]:
    """Node types from the job's [cluster] section as nodes: one per type, as nodes an
    autoscaler could add; with `declared`, the cluster the section describes (`count`
    nodes of each type), for `orch plan` to simulate on."""
    return [
        NodeInfo(
            node_id=f"{t.name}-{i}" if declared else f"type:{t.name}",
            address=t.name,
            cpus=t.cpus,
            gpus=t.gpus,
            memory_gb=t.memory_gb or float("inf"),
            gpu_type=slug(t.gpu_type) if t.gpu_type else CPU,
            source="node" if declared else "autoscaler",
        )
        for t in types
        for i in range(t.count if declared else 1)
    ]


def fits(res: Resources, node: NodeInfo) -> bool:
    if res.gpus and not type_matches(node.gpu_type, accepted_types(res)):
        return False
    if res.memory_gb and node.memory_gb < res.memory_gb:
        return False
    return node.cpus >= res.cpus and node.gpus >= res.gpus


def gpu_memory(node: NodeInfo) -> float:
    """GB per GPU of a node (0 for a CPU node)."""
    return memory_gb(node.gpu_type, node.gpu_memory_gb) if node.gpus else 0.0


def usable_memory(res: Resources, node: NodeInfo) -> float:
    """GPU memory one trial gets on `node`: its fraction of a GPU, or all of each GPU."""
    return gpu_memory(node) * min(res.gpus, 1.0)


def peak_gb(trial: TrialSpec) -> float | None:
    from orchestrator.spec.cost import peak_memory_gb

    return peak_memory_gb(trial) if trial.resources.gpus else None


def fits_trial(trial: TrialSpec, node: NodeInfo, excluded: Iterable[str] = ()) -> bool:
    """`fits`, GPU memory included, and not on a type the trial ran out of memory on."""
    if not fits(trial.resources, node) or node.gpu_type in set(excluded):
        return False
    need = peak_gb(trial)
    return need is None or need <= usable_memory(trial.resources, node)


def describe_request(res: Resources) -> str:
    parts = [f"{res.cpus:g} CPU"]
    if res.gpus:
        kinds = " or ".join(res.gpu_type) if res.gpu_type else "any type"
        parts.insert(0, f"{res.gpus:g} GPU ({kinds})")
    if res.memory_gb:
        parts.append(f"{res.memory_gb:g} GB memory")
    return ", ".join(parts)


def largest_by_type(nodes: Sequence[NodeInfo]) -> str:
    best: dict[str, NodeInfo] = {}
    for n in nodes:
        cur = best.get(n.gpu_type)
        if cur is None or (n.gpus, n.cpus, n.memory_gb) > (cur.gpus, cur.cpus, cur.memory_gb):
            best[n.gpu_type] = n
    return (
        "; ".join(
            f"{t}: {n.gpus:g} GPU, {n.cpus:g} CPU, {n.memory_gb:.0f} GB"
            + (" (autoscaler)" if n.source == "autoscaler" else "")
            for t, n in sorted(best.items())
        )
        or "no nodes"
    )


def infeasible(trials: Sequence[TrialSpec], nodes: Sequence[NodeInfo]) -> list[TrialSpec]:
    return [t for t in trials if not any(fits_trial(t, n) for n in nodes)]


def memory_problem(trial: TrialSpec, nodes: Sequence[NodeInfo]) -> str | None:
    """Why the trial fits no acceptable GPU's memory, or None when memory is not the reason."""
    candidates = [n for n in nodes if fits(trial.resources, n)]
    need = peak_gb(trial)
    if not candidates or need is None:
        return None
    best = max(candidates, key=lambda n: usable_memory(trial.resources, n))
    have = usable_memory(trial.resources, best)
    if need <= have:
        return None
    share = f"{trial.resources.gpus:g} of " if trial.resources.gpus < 1 else ""
    whole = ", ask for a whole GPU" if share else ""
    return (
        f'trial "{trial.name}" needs about {need:.1f} GB of GPU memory (weights, gradients, '
        f"optimizer slots and activations at batch {trial.batch_size}, "
        f"{trial.recipe.precision}); the largest acceptable GPU is {best.gpu_type} with "
        f"{gpu_memory(best):g} GB ({share}which gives it {have:.1f} GB). Lower the batch size, "
        f"use mixed precision{whole} or add a larger GPU type."
    )


def check_feasible(trials: Sequence[TrialSpec], nodes: Sequence[NodeInfo]) -> None:
    """Raise InfeasibleError naming every trial no node can ever hold (GPU memory included)."""
    bad = infeasible(trials, nodes)
    if not bad:
        return
    lines = [
        memory_problem(t, nodes)
        or f'trial "{t.name}" asks for {describe_request(t.resources)}: no node can hold it.'
        for t in bad
    ]
    lines.append(
        f"Largest node of each type: {largest_by_type(nodes)}. "
        "Lower the request, add such a node, or declare a [cluster] node type "
        "the autoscaler can start."
    )
    raise InfeasibleError("\n".join(lines))
