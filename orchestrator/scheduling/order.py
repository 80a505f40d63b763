"""Launch order: longest estimated trial first (pure).

With independent trials on parallel GPUs, starting the longest jobs first (LPT) keeps the
grid's makespan within 4/3 of the optimum, instead of leaving one long trial to run alone
at the end. A trial's duration is its cost (MACs x images x epochs x 3, spec/cost.py) over
the speed of the fastest acceptable GPU type in the cluster, measured on finished epochs
when orch has seen that type, else a prior from the type's peak throughput.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.scheduling.cluster import NodeInfo
from orchestrator.scheduling.feasibility import accepted_types, type_matches
from orchestrator.scheduling.gputypes import CPU, prior_speed
from orchestrator.spec.cost import estimate_cost
from orchestrator.spec.model import TrialSpec


def speed_of(gpu_type: str, learned: Mapping[str, float]) -> float:
    """MAC/s of one device of `gpu_type` (one CPU core for "cpu")."""
    return learned.get(gpu_type) or prior_speed(gpu_type)


def estimated_seconds(
    trial: TrialSpec, nodes: Sequence[NodeInfo], learned: Mapping[str, float]
) -> float:
    cost = estimate_cost(trial)
    res = trial.resources
    if res.gpus:
        accepted = accepted_types(res)
        types = {n.gpu_type for n in nodes if n.gpus and type_matches(n.gpu_type, accepted)}
        per_device = max((speed_of(t, learned) for t in types), default=prior_speed("unknown"))
        # Data-parallel scaling is imperfect: ~90% per extra GPU; a fraction of a GPU is
        # shared, so it gets that fraction of the speed.
        devices = res.gpus if res.gpus <= 1 else 1 + 0.9 * (res.gpus - 1)
        return cost / (per_device * devices)
    return cost / (speed_of(CPU, learned) * max(res.cpus, 1.0))


def longest_first(
    trials: Sequence[TrialSpec], nodes: Sequence[NodeInfo], learned: Mapping[str, float]
) -> list[TrialSpec]:
    """Trials sorted by estimated duration, longest first; ties keep file order."""
    indexed = list(enumerate(trials))
    indexed.sort(key=lambda it: (-estimated_seconds(it[1], nodes, learned), it[0]))
    return [t for _, t in indexed]
