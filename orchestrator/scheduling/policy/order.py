"""Launch order: longest estimated trial first (pure).

With independent trials on parallel GPUs, starting the longest jobs first (LPT) keeps the
grid's makespan within 4/3 of the optimum, instead of leaving one long trial to run alone
at the end. A trial's duration is the cost model's estimate (spec/cost.py: a roofline of
each layer on the GPU type, the input pipeline's floor, the evaluation pass) on the fastest
acceptable GPU type in the cluster, scaled by what orch measured on earlier epochs of the
same model family on that type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.gputypes import CPU, accepted_types, type_matches
from orchestrator.spec.cost import estimate
from orchestrator.spec.model import TrialSpec

UNKNOWN_TYPE = "unknown"


def candidate_types(trial: TrialSpec, nodes: Sequence[NodeInfo]) -> list[str]:
    """GPU types (slugs) in `nodes` the trial accepts; ['cpu'] for a CPU-only trial."""
    res = trial.resources
    if not res.gpus:
        return [CPU]
    accepted = accepted_types(res)
    types = sorted({n.gpu_type for n in nodes if n.gpus and type_matches(n.gpu_type, accepted)})
    return types or sorted(accepted or {UNKNOWN_TYPE})


def seconds_on(
    trial: TrialSpec, gpu_type: str, learned: Mapping[str, float] | None = None
) -> float | None:
    e = estimate(trial, gpu_type, learned=learned)
    return None if e is None else e.seconds


def estimated_seconds(
    trial: TrialSpec, nodes: Sequence[NodeInfo], learned: Mapping[str, float]
) -> float:
    """The trial's duration on the fastest acceptable type present; 0.0 when the model is
    unknown to the zoo, so such trials sort last."""
    times = [seconds_on(trial, t, learned) for t in candidate_types(trial, nodes)]
    known = [t for t in times if t is not None]
    return min(known) if known else 0.0


def longest_first(
    trials: Sequence[TrialSpec], nodes: Sequence[NodeInfo], learned: Mapping[str, float]
) -> list[TrialSpec]:
    """Trials sorted by estimated duration, longest first; ties keep file order."""
    indexed = list(enumerate(trials))
    indexed.sort(key=lambda it: (-estimated_seconds(it[1], nodes, learned), it[0]))
    return [t for _, t in indexed]
