"""Launch order: longest estimated trial first, and GPU-type affinity (pure).

With independent trials on parallel GPUs, starting the longest jobs first (LPT) keeps the
grid's makespan within 4/3 of the optimum, instead of leaving one long trial to run alone
at the end. A trial's duration is the cost model's estimate (spec/cost.py: a roofline of
each layer on the GPU type, the input pipeline's floor, the evaluation pass) on the fastest
acceptable GPU type in the cluster, scaled by what orch measured on earlier epochs of the
same model family on that type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

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


def by_cost_model(
    learned: Mapping[str, float] | None = None,
) -> Callable[[TrialSpec, NodeInfo], float | None]:
    """The cost model's seconds for a trial on a node's GPU type (its CPUs for a CPU-only
    trial), scaled by what orch measured (`learned`): the duration function the driver's
    estimates use."""

    def seconds(trial: TrialSpec, node: NodeInfo) -> float | None:
        return seconds_on(trial, node.gpu_type if trial.resources.gpus else CPU, learned)

    return seconds


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


# A trial is long when it would take more than this share of the job's estimated lower
# bound on a type slower than the one the estimated schedule gives it (benchmarks/
# RESULTS.md, "Makespan": the best of 0, 0.1, 0.2 and 0.3).
LONG_SHARE = 0.3


def reservations(
    ordered: Sequence[TrialSpec],
    nodes: Sequence[NodeInfo],
    learned: Mapping[str, float] | None = None,
    duration: Callable[[TrialSpec, NodeInfo], float | None] | None = None,
) -> dict[str, frozenset[str]]:
    """GPU-type affinity: the slower types each long trial is kept off, by trial key.

    orch simulates the job on the cluster from the estimates, in launch order
    (simulate.py, without reservations). A long trial the estimated schedule puts on a
    fast type is bound to types at least that fast: with nothing free when Tune creates
    it, it waits for a fast GPU instead of starting on whichever GPU frees first, where a
    late start on a slow type would end the job late. Short trials keep every type, and
    fill the slow GPUs. Trials that name their types (`gpu_type = [...]`) keep the
    user's order. Empty with fewer than two GPU types. `duration`: the estimates, when the
    caller has them at hand (`orch plan`)."""
    from orchestrator.scheduling.policy.simulate import lower_bound, simulate

    types = sorted({n.gpu_type for n in nodes if n.gpus})
    if len(types) < 2:
        return {}
    memo: dict[tuple[str, str], float | None] = {}

    def estimates(trial: TrialSpec, node: NodeInfo) -> float | None:
        gpu_type = node.gpu_type if trial.resources.gpus else CPU
        if (trial.key, gpu_type) not in memo:
            memo[trial.key, gpu_type] = seconds_on(trial, gpu_type, learned)
        return memo[trial.key, gpu_type]

    time_of = duration or estimates
    by_type = {n.gpu_type: n for n in nodes if n.gpus}

    def seconds(trial: TrialSpec, gpu_type: str) -> float | None:
        return time_of(trial, by_type[gpu_type])

    planned: dict[str, str] = {}
    simulate(ordered, nodes, time_of, reserved={}, placed=planned)
    long = LONG_SHARE * lower_bound(ordered, nodes, time_of)
    out = {}
    for t in ordered:
        home = planned.get(t.key)
        if not t.resources.gpus or t.resources.gpu_type or home is None:
            continue
        there = seconds(t, home)
        slower = {
            k
            for k in types
            if k != home
            and there is not None
            and (s := seconds(t, k)) is not None
            and s > there
            and s > long
        }
        if slower:
            out[t.key] = frozenset(slower)
    return out
