"""Profiling a job's trials before planning it: measure, then order (pure).

Longest-first is only as good as the estimates it sorts by, and the cost model is off by
tens of percent per trial (benchmarks/RESULTS.md: the makespan benchmark draws that error
as a lognormal factor, sigma 0.3). Trials with one estimate (one model, many seeds or
schedules) cannot be told apart at all. When trials must wait for GPUs, which ones start
first and which take the fast types decides the makespan, and a wrong guess costs hours:
a long trial that waits for a second turn, or that starts on a slow type.

So orch first measures, as Gavel and Pollux profile jobs before placing them: every GPU
trial runs `EPOCHS` epochs (the first one includes tracing and compiling; the second is
the measurement) wherever a GPU is free, checkpoints and stops. Once every trial has been
measured, orch plans the rest from the measured rates: longest remaining first, and
GPU-type affinity (order.reservations) from the measured durations, with the trials
stopped meanwhile. The cost: `EPOCHS` epochs of every trial plus one restart each
(`Rule.restart_s`), before the plan. A job is profiled only when that is worth it
(`worth_profiling`): some of its trials must wait for a GPU (else the order decides
nothing), the profiling round costs at most `MAX_SHARE` of the estimated makespan, and
Tune holds every trial at once (no `max_concurrent`, no more trials than Tune creates
ahead: a trial held for the plan must not keep another from being created).

A measured trial's time on another type is the cost model's estimate there scaled by the
measured / estimated ratio on the type it ran on (the learned rate, as migrate.py moves
judge it). `Placement` (scheduling/adapters/placement.py) runs this in a live job;
`simulate_profiled` composes the same steps for the makespan benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.feasibility import fits
from orchestrator.scheduling.policy.migrate import Rule
from orchestrator.scheduling.policy.simulate import PENDING
from orchestrator.spec.model import TrialSpec

Duration = Callable[[TrialSpec, NodeInfo], "float | None"]

EPOCHS = 2  # epochs a trial trains before it stops to be planned: warm-up + one measured
MAX_SHARE = 0.05  # the most the profiling round may cost, as a share of the makespan


def can_profile(trials: Sequence[TrialSpec]) -> bool:
    """Every trial is a GPU trial with epochs left after the profiling round (a job that
    mixes in others is not profiled: they would hold GPUs across the plan)."""
    return len(trials) >= 2 and all(t.resources.gpus and t.epochs > EPOCHS for t in trials)


def first_epochs(duration: Duration) -> Duration:
    """A trial's profiling round: its first `EPOCHS` epochs, from its whole duration."""

    def seconds(trial: TrialSpec, node: NodeInfo) -> float | None:
        whole = duration(trial, node)
        return None if whole is None else whole * EPOCHS / trial.epochs

    return seconds


def worth_profiling(
    queue: Sequence[TrialSpec],
    nodes: Sequence[NodeInfo],
    estimated: Duration,
    rule: Rule,
    *,
    max_concurrent: int | None = None,
    max_share: float = MAX_SHARE,
) -> bool:
    """Whether orch profiles this job (in launch order `queue`) before planning it: the
    round costs at most `max_share` of the estimated makespan."""
    from orchestrator.scheduling.policy.simulate import simulate

    if not can_profile(queue) or len(queue) > PENDING:
        return False  # Tune creates PENDING trials ahead: all must be held at once
    if max_concurrent is not None and max_concurrent < len(queue):
        return False  # the feeder would hold back trials until profiled ones end
    starts: dict[str, float] = {}
    span = simulate(queue, nodes, estimated, reserved={}, starts=starts)
    if not any(s > 0 for s in starts.values()):
        return False  # every trial starts at once: there is no order to decide
    return profiling_round(queue, nodes, estimated, rule) <= max_share * span


def profiling_round(
    queue: Sequence[TrialSpec], nodes: Sequence[NodeInfo], duration: Duration, rule: Rule
) -> float:
    """Seconds the profiling round adds to a job: every trial's first `EPOCHS` epochs, in
    launch order on any free GPU, and the restart after it."""
    from orchestrator.scheduling.policy.simulate import simulate

    return simulate(queue, nodes, first_epochs(duration), reserved={}) + rule.restart_s


def remaining(trial: TrialSpec, done: int) -> TrialSpec:
    """The trial as the plan sees it once `done` epochs are trained: its epochs left."""
    return replace(trial, epochs=max(1, trial.epochs - done))


def learned_seconds(
    epoch_s: Mapping[str, float], measured_type: str, measured_epoch_s: float, epochs_left: int
) -> dict[str, float]:
    """A measured trial's seconds left on each type: the cost model's seconds per epoch
    there (`epoch_s`, by type) times the measured / estimated ratio on the type it ran on;
    on that type, the measured epoch time itself. {} when the type it ran on has no
    estimate (nothing to scale by)."""
    here = epoch_s.get(measured_type)
    if not here:
        return {}
    ratio = measured_epoch_s / here
    return {t: s * ratio * epochs_left for t, s in epoch_s.items()}


def plan_order(
    trials: Sequence[TrialSpec], left_s: Callable[[TrialSpec], float | None]
) -> list[TrialSpec]:
    """Longest measured time left first (on the fastest type the trial accepts); trials
    without a measurement after those, in their given order."""
    indexed = list(enumerate(trials))
    indexed.sort(key=lambda it: (_sort_key(left_s(it[1])), it[0]))
    return [t for _, t in indexed]


def _sort_key(seconds: float | None) -> float:
    return float("inf") if seconds is None else -seconds


def simulate_profiled(
    queue: Sequence[TrialSpec],
    nodes: Sequence[NodeInfo],
    true: Duration,
    estimated: Duration,
    rule: Rule,
) -> float:
    """A job's makespan under orch's policy with profiling: the profiling round (each
    trial's first `EPOCHS` epochs, in launch order, on any GPU: no affinity), then, from
    an empty cluster, the rest planned from the measured durations (a trial's measured
    rate is its true one here), one restart each, moves included (migrate.py). When
    `worth_profiling` (from the estimates) does not hold: orch's plain schedule."""
    from orchestrator.scheduling.policy.order import reservations
    from orchestrator.scheduling.policy.simulate import simulate

    if not worth_profiling(queue, nodes, estimated, rule):
        return simulate(queue, nodes, true, migrate=rule, estimated=estimated)
    round_s = profiling_round(queue, nodes, true, rule) - rule.restart_s  # restarts: below
    whole = {t.key: t for t in queue}

    def share(trial: TrialSpec) -> float:
        return trial.epochs / whole[trial.key].epochs

    def left(trial: TrialSpec, node: NodeInfo) -> float | None:
        seconds = true(whole[trial.key], node)
        return None if seconds is None else seconds * share(trial) + rule.restart_s

    def left_estimated(trial: TrialSpec, node: NodeInfo) -> float | None:
        seconds = estimated(whole[trial.key], node)
        return None if seconds is None else seconds * share(trial)

    def fastest(trial: TrialSpec) -> float | None:
        times = [s for n in nodes if fits(trial.resources, n) and (s := left(trial, n))]
        return min(times) if times else None

    ordered = plan_order([remaining(t, EPOCHS) for t in queue], fastest)
    reserved = reservations(ordered, nodes, duration=left)
    return round_s + simulate(
        ordered, nodes, left, reserved=reserved, migrate=rule, estimated=left_estimated
    )
