"""Waiting trials with a stop request end in the driver, unstarted
(scheduling/adapters/withdraw.py), against the parts of Tune's controller it changes; the
whole path through real Tune and `orch cancel` is tests/integration/test_cancel_waiting.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.protocol import FailureClass, StopRequest, TrialEnd, TrialState
from orchestrator.scheduling.adapters.control import Control
from orchestrator.scheduling.adapters.events import TuneEvents
from orchestrator.scheduling.adapters.withdraw import Withdraw
from orchestrator.scheduling.submit import final_state
from tests.unit.test_trial_events import _Sink


@dataclass(eq=False)
class Trial:
    key: str
    status: str = "PENDING"
    placement_group_factory: str = "cpu1"
    config: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.config = {"trial_key": self.key}


class ActorManager:
    def __init__(self, started: set[str]) -> None:
        self.started, self.removed = started, []

    def is_actor_started(self, actor: str) -> bool:
        return actor in self.started

    def remove_actor(self, actor: str) -> None:
        self.removed.append(actor)


class ActorCache:
    def __init__(self) -> None:
        self.decreased: list[str] = []

    def decrease_max(self, request: str) -> None:
        self.decreased.append(request)


class Controller:
    """What Withdraw reads and changes of Tune's controller, and Tune's stop_trial."""

    def __init__(self, trials: list[Trial], started: set[str]) -> None:
        self._pending_trials = set(trials)
        self._trial_to_actor = {t: f"actor-{t.key}" for t in trials}
        self._actor_to_trial = {a: t for t, a in self._trial_to_actor.items()}
        self._staged_trials = set(trials)
        self._actor_manager = ActorManager({f"actor-{k}" for k in started})
        self._actor_cache = ActorCache()
        self.stopped: list[str] = []

    def stop_trial(self, trial: Trial) -> None:
        assert trial not in self._trial_to_actor  # Tune would stop its actor instead
        self._pending_trials.discard(trial)
        trial.status = "TERMINATED"
        self.stopped.append(trial.key)


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_requested_lists_whole_requests_only(tmp_path: Path) -> None:
    control = Control(tmp_path)
    assert control.requested() == set()  # no control folder yet
    control.request_stop("a", failure_class=FailureClass.CANCELLED, reason="r")
    (tmp_path / "control" / "b.123.tmp").write_text("{")  # a writer mid-way
    assert control.requested() == {"a"}


def test_waiting_trials_asked_to_stop_end_unstarted(tmp_path: Path) -> None:
    control, clock = Control(tmp_path), Clock()
    trials = {k: Trial(k) for k in ("cancelled", "moving", "free", "starting", "budget")}
    controller = Controller(list(trials.values()), started={"starting"})
    ended: list[tuple[str, StopRequest]] = []
    withdraw = Withdraw(control, lambda t, r: ended.append((t.key, r)), clock=clock)

    withdraw(controller)  # no request yet: nothing happens
    assert controller.stopped == [] and withdraw.withdrawn == 0
    control.request_stop("cancelled", failure_class=FailureClass.CANCELLED, reason="by me")
    control.request_stop("moving", failure_class=FailureClass.MIGRATED, reason="profiling")
    control.request_stop("starting", failure_class=FailureClass.CANCELLED, reason="by me")
    withdraw(controller)  # within the period of the last look: waits
    assert controller.stopped == []
    clock.now += withdraw.period_s
    withdraw(controller)

    assert controller.stopped == ["cancelled"]
    assert ended == [("cancelled", StopRequest(FailureClass.CANCELLED, "by me"))]
    # its queued request for resources is cancelled in Ray and in Tune's actor cache
    assert controller._actor_manager.removed == ["actor-cancelled"]
    assert controller._actor_cache.decreased == ["cpu1"]
    assert trials["cancelled"] not in controller._staged_trials
    # a move is not an end; a trial whose process has its CPU reads its request itself
    assert {"moving", "free", "starting"} <= {t.key for t in controller._pending_trials}
    assert trials["starting"] in controller._trial_to_actor

    clock.now += withdraw.period_s  # a retry budget spent while the retry waits
    control.request_stop("budget", failure_class=FailureClass.OOM, reason="gave up")
    withdraw(controller)
    assert controller.stopped == ["cancelled", "budget"] and withdraw.withdrawn == 2


def test_sinks_see_the_end_the_trial_would_have_reported() -> None:
    sink = _Sink()
    events = TuneEvents([sink])
    trial = Trial("k")
    request = StopRequest(FailureClass.CANCELLED, "cancelled by tester")
    events.withdrawn(trial, request)
    events.on_trial_complete(0, [], trial)  # what Tune's stop_trial calls next
    (result, completed) = sink.events
    assert result == ("result", "k", request.end()) and completed == (
        "completed",
        "k",
        request.end(),
    )
    end = completed[2]
    assert isinstance(end, TrialEnd) and end.state == TrialState.CANCELLED


def test_a_cancelled_job_is_cancelled_whatever_else_ended() -> None:
    assert final_state(["FINISHED", "FINISHED"]) == "FINISHED"
    assert final_state([]) == "FINISHED"
    assert final_state(["FINISHED", "FAILED"]) == "FAILED"
    assert final_state(["FINISHED", "CANCELLED", "FAILED"]) == "CANCELLED"
    assert final_state(["RUNNING"]) == "FAILED"  # a trial the driver left unended
