"""Profiling a job before planning it (scheduling/policy/profile.py), and the Tune side that
runs it (Placement.dispatch, Requeue): measured trials wait for the plan, then go in the
order of their measured time left."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.protocol import EpochReport, FailureClass
from orchestrator.scheduling.adapters.control import Control
from orchestrator.scheduling.adapters.placement import Placement
from orchestrator.scheduling.adapters.requeue import Requeue
from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.migrate import Rule
from orchestrator.scheduling.policy.profile import (
    EPOCHS,
    can_profile,
    learned_seconds,
    plan_order,
    simulate_profiled,
    worth_profiling,
)
from orchestrator.scheduling.policy.simulate import simulate
from orchestrator.spec.load import parse_job
from orchestrator.spec.model import TrialSpec

ONE = [NodeInfo("g", "g", cpus=16, gpus=2, memory_gb=64, gpu_type="v100")]
RULE = Rule(restart_s=60.0)


def grid(n: int, epochs: int = 100, gpus: float = 1.0) -> list[TrialSpec]:
    job = parse_job(
        {
            "defaults": {"dataset": "cifar10", "epochs": epochs, "model": "resnet20"},
            "trial": [{"name": f"t{i}", "seed": i, "resources": {"gpus": gpus}}
                      for i in range(n)],
        },
        "j.toml",
    )  # fmt: skip
    return list(job.trials)


def hours(table: dict[str, float]) -> Any:
    """A duration function: each trial's hours by key, on any node."""
    return lambda trial, node: table[trial.key] * 3600


def test_what_can_be_profiled() -> None:
    assert can_profile(grid(3))
    assert not can_profile(grid(1))  # nothing to order
    assert not can_profile(grid(3, epochs=EPOCHS))  # nothing left after the round
    cpu = grid(3, gpus=0)
    assert not can_profile(cpu)


def test_worth_profiling_only_when_trials_wait_and_the_round_is_cheap() -> None:
    three = grid(3)
    flat = hours({t.key: 10.0 for t in three})
    assert worth_profiling(three, ONE, flat, RULE)  # one of three waits: 2 % of 20 h
    assert not worth_profiling(three[:2], ONE, flat, RULE)  # both start at once
    assert not worth_profiling(three, ONE, flat, RULE, max_concurrent=2)
    short = grid(3, epochs=10)  # the round is 2 of 10 epochs: 20 %
    assert not worth_profiling(short, ONE, hours({t.key: 10.0 for t in short}), RULE)
    assert worth_profiling(short, ONE, hours({t.key: 10.0 for t in short}), RULE, max_share=0.5)
    tiny = hours({t.key: 0.01 for t in three})  # 36 s trials: the restart alone is too much
    assert not worth_profiling(three, ONE, tiny, RULE)


def test_learned_seconds_scale_the_estimates_by_the_measured_rate() -> None:
    left = learned_seconds({"a100": 10.0, "v100": 20.0}, "v100", 30.0, epochs_left=4)
    assert left == {"a100": 60.0, "v100": 120.0}  # 1.5 x slower than estimated
    assert learned_seconds({"a100": 10.0}, "t4", 30.0, 4) == {}  # no estimate to scale


def test_plan_order_is_longest_measured_first_then_the_unmeasured_in_order() -> None:
    a, b, c, d = grid(4)
    left = {a.key: 1.0, b.key: None, c.key: 5.0, d.key: None}
    assert plan_order([a, b, c, d], lambda t: left[t.key]) == [c, a, b, d]


def test_profiling_starts_the_long_trial_first_where_the_estimates_could_not() -> None:
    """Three trials with one estimate on two GPUs; the last in launch order is really the
    long one. Without measuring, it waits for a GPU and ends the job late; profiled, it
    starts right after the round."""
    trials = grid(3)
    estimated = hours({t.key: 10.0 for t in trials})
    true = hours({trials[0].key: 5.0, trials[1].key: 5.0, trials[2].key: 20.0})
    plain = simulate(trials, ONE, true, migrate=RULE, estimated=estimated)
    profiled = simulate_profiled(trials, ONE, true, estimated, RULE)
    assert plain == pytest.approx(25 * 3600)
    # the round: two epochs of each (2 % of its time), then 19.6 h of the long one
    assert profiled < 21 * 3600
    # not worth it (every trial starts at once): orch's plain schedule, unchanged
    assert simulate_profiled(trials[:2], ONE, true, estimated, RULE) == simulate(
        trials[:2], ONE, true, migrate=RULE, estimated=estimated
    )


# -- the Tune side: Placement.dispatch and Requeue ---------------------------------------


class Trial:
    """What Placement and Requeue read and call on a Tune trial."""

    def __init__(self, key: str) -> None:
        self.config = {"trial_key": key}
        self.status = "PENDING"
        self.error_file = ""
        self.placement_group_factory: Any = None

    def update_resources(self, resources: object) -> None:
        self.placement_group_factory = resources


class Controller:
    """Tune's controller state that Requeue and Placement.dispatch read and change."""

    def __init__(self, trials: list[Trial]) -> None:
        self.trials = trials
        self._pending_trials = set(trials)
        self._pending_trials_list = list(trials)
        self._resources_to_pending_trials: dict[Any, set[Trial]] = defaultdict(set)
        self._resources_to_pending_trials[None] = set(trials)
        self._trial_to_actor: dict[Trial, Any] = {}
        self._staged_trials: set[Trial] = set()
        self._tune_controller = self

    def get_trials(self) -> list[Trial]:
        return self.trials


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_measured_trials_wait_for_the_plan_then_go_longest_first(tmp_path: Path) -> None:
    nodes = [NodeInfo("g", "g", cpus=16, gpus=3, memory_gb=64, gpu_type="v100")]
    specs = {t.key: t for t in grid(4, epochs=50)}
    keys = list(specs)
    control, clock = Control(tmp_path), Clock()
    placement = Placement(
        specs, lambda: nodes, free=lambda n: {"v100": 3.0}, control=control,
        migrate=RULE, others=None, clock=clock, profile=True, profile_share=0.5,
    )  # fmt: skip
    trials = [Trial(k) for k in keys]
    controller = Controller(trials)
    requeue = Requeue(placement)
    for k in keys:
        placement.types_for(k)
    assert placement.profiling

    def measured(key: str, epoch_s: float) -> None:
        """The trial's epochs until its measured one, its stop, and Tune's retry."""
        placement.trial_started(key)
        placement.trial_result(key, EpochReport(epoch=0, epochs_done=1, epoch_time_s=epoch_s))
        request = control.stop_request(key)
        assert request is not None and request["failure_class"] == FailureClass.MIGRATED
        assert "profiling" in request["reason"]
        last = EpochReport(epoch=1, epochs_done=2, epoch_time_s=epoch_s, node_id="g")
        placement.trial_result(key, last)
        placement.trial_failed(
            key, "profiled", will_retry=True, failure_class=FailureClass.MIGRATED
        )
        control.clear(key)  # as the trial does when it stops

    # the first three run their round; the fourth has not run yet: it goes first
    for key, epoch_s in zip(keys[:3], (10.0, 40.0, 30.0), strict=True):
        measured(key, epoch_s)
    assert requeue.choose_trial_to_run(controller) is trials[3]
    assert controller._pending_trials_list == [trials[3]]  # the measured ones are held
    controller._pending_trials.discard(trials[3])  # it runs
    trials[3].status = "RUNNING"
    measured(keys[3], 25.0)
    trials[3].status = "PENDING"
    controller._pending_trials.add(trials[3])
    controller._pending_trials_list.append(trials[3])
    # all measured: held a little longer, while Ray frees the last GPU
    assert requeue.choose_trial_to_run(controller) is None
    clock.now += placement.period_s + 0.1
    first = requeue.choose_trial_to_run(controller)
    assert placement.planned and not placement.held
    # longest measured time left first (the launch order was 10, 40, 30, 25 s an epoch)
    order = [keys[1], keys[2], keys[3], keys[0]]
    assert [t.config["trial_key"] for t in controller._pending_trials_list] == order
    assert first is trials[1]
    # each bound again and filed under its new request, as Tune files a pending trial
    for t in trials:
        assert t.placement_group_factory is not None
        assert t in controller._resources_to_pending_trials[t.placement_group_factory]
    # after the plan, a trial's reports ask for no more stops
    placement.trial_started(keys[1])
    placement.trial_result(keys[1], EpochReport(epoch=2, epochs_done=3, epoch_time_s=40.0))
    assert control.stop_request(keys[1]) is None


def test_a_trial_that_fails_before_its_measurement_is_measured_on_its_retry(
    tmp_path: Path,
) -> None:
    specs = {t.key: t for t in grid(3, epochs=50)}
    key = next(iter(specs))
    control = Control(tmp_path)
    placement = Placement(
        specs, lambda: ONE, free=lambda n: {"v100": 2.0}, control=control, migrate=RULE,
        others=None, profile=True, profile_share=0.5,
    )  # fmt: skip
    placement.types_for(key)
    placement.trial_result(key, EpochReport(epoch=0, epochs_done=1, epoch_time_s=5.0))
    control.clear(key)  # its run died before the measured epoch (a node lost)
    placement.trial_failed(key, "node lost", will_retry=True, failure_class=FailureClass.NODE_LOST)
    assert key not in placement.held
    placement.trial_result(key, EpochReport(epoch=1, epochs_done=2, epoch_time_s=5.0))
    assert control.stop_request(key) is not None  # asked again


def test_a_job_not_worth_profiling_runs_as_before(tmp_path: Path) -> None:
    specs = {t.key: t for t in grid(2, epochs=50)}  # two trials, two GPUs: none waits
    control = Control(tmp_path)
    placement = Placement(
        specs, lambda: ONE, free=lambda n: {"v100": 2.0}, control=control, migrate=RULE,
        others=None, profile=True,
    )  # fmt: skip
    key = next(iter(specs))
    placement.types_for(key)
    assert placement.profiling is False
    placement.trial_result(key, EpochReport(epoch=0, epochs_done=1, epoch_time_s=5.0))
    assert control.stop_request(key) is None
    trials = [Trial(k) for k in specs]
    assert Requeue(placement).choose_trial_to_run(Controller(trials)) is trials[0]


def test_profiling_is_off_without_moves() -> None:
    specs = {t.key: replace(t) for t in grid(3, epochs=50)}
    placement = Placement(specs, lambda: ONE, free=lambda n: {"v100": 2.0}, profile=True)
    assert placement.profiling is False  # no control, no migrate rule: no stops at all


def test_a_trial_given_up_before_its_measurement_does_not_hold_the_plan(tmp_path: Path) -> None:
    """The infeasible watchdog gives up a trial no node can hold any more (it reports to
    Placement too: tuner.py); the plan goes on without it."""
    specs = {t.key: t for t in grid(3, epochs=50)}
    keys = list(specs)
    control, clock = Control(tmp_path), Clock()
    placement = Placement(
        specs, lambda: ONE, free=lambda n: {"v100": 2.0}, control=control, migrate=RULE,
        others=None, clock=clock, profile=True, profile_share=0.5,
    )  # fmt: skip
    trials = [Trial(k) for k in keys]
    controller = Controller(trials)
    for k in keys[:2]:
        placement.types_for(k)
        placement.trial_result(k, EpochReport(epoch=1, epochs_done=2, epoch_time_s=5.0))
        placement.trial_failed(k, "profiled", will_retry=True, failure_class=FailureClass.MIGRATED)
    assert placement.dispatch(controller) == set(trials[:2])  # the third is not measured
    placement.trial_failed(keys[2], "infeasible", will_retry=False,
                           failure_class=FailureClass.INFEASIBLE)  # fmt: skip
    placement.dispatch(controller)
    clock.now += placement.period_s + 0.1
    assert placement.dispatch(controller) == set() and placement.planned
