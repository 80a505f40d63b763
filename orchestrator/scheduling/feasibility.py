"""Can each trial ever run? Compared with the cluster's nodes and the node types an
autoscaler could add (pure). Tune would otherwise wait forever on an impossible request."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from orchestrator.errors import InfeasibleError
from orchestrator.scheduling.cluster import NodeInfo
from orchestrator.scheduling.gputypes import slug
from orchestrator.spec.model import NodeType, Resources, TrialSpec


def nodes_from_types(types: Iterable[NodeType]) -> list[NodeInfo]:
    """Node types from the job's [cluster] section, as nodes an autoscaler could add."""
    return [
        NodeInfo(
            node_id=f"type:{t.name}",
            address=t.name,
            cpus=t.cpus,
            gpus=t.gpus,
            memory_gb=t.memory_gb or float("inf"),
            gpu_type=slug(t.gpu_type) if t.gpu_type else "cpu",
            source="autoscaler",
        )
        for t in types
    ]


def accepted_types(res: Resources) -> set[str] | None:
    """Slugs of acceptable GPU types; None = any."""
    return {slug(t) for t in res.gpu_type} if res.gpu_type else None


def type_matches(node_type: str, accepted: set[str] | None) -> bool:
    """'a100' accepts nodes labelled 'a100' and 'a100-sxm4-80gb' (detected full names)."""
    if accepted is None:
        return True
    return any(node_type == a or node_type.startswith(a + "-") for a in accepted)


def fits(res: Resources, node: NodeInfo) -> bool:
    if res.gpus and not type_matches(node.gpu_type, accepted_types(res)):
        return False
    if res.memory_gb and node.memory_gb < res.memory_gb:
        return False
    return node.cpus >= res.cpus and node.gpus >= res.gpus


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
    return [t for t in trials if not any(fits(t.resources, n) for n in nodes)]


def check_feasible(trials: Sequence[TrialSpec], nodes: Sequence[NodeInfo]) -> None:
    """Raise InfeasibleError naming every trial no node can ever hold."""
    bad = infeasible(trials, nodes)
    if not bad:
        return
    lines = [
        f'trial "{t.name}" asks for {describe_request(t.resources)}: no node can hold it.'
        for t in bad
    ]
    lines.append(
        f"Largest node of each type: {largest_by_type(nodes)}. "
        "Lower the request, add such a node, or declare a [cluster] node type "
        "the autoscaler can start."
    )
    raise InfeasibleError("\n".join(lines))
