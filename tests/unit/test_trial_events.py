"""The driver's boundary with Ray Tune: each dict a trial reports is parsed once, there,
and every sink gets the same typed report (issue 12 §2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.protocol import (
    EndKind,
    EpochReport,
    FailureClass,
    Report,
    StopRequest,
    TrialEnd,
    TrialState,
)
from orchestrator.scheduling.adapters.events import TuneEvents


@dataclass
class _Trial:  # what TuneEvents reads of a Tune trial
    config: dict[str, Any]
    last_result: dict[str, Any] = field(default_factory=dict)


class _Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []

    def trial_started(self, key: str) -> None:
        self.events.append(("started", key, None))

    def trial_result(self, key: str, report: Report) -> None:
        self.events.append(("result", key, report))

    def trial_completed(self, key: str, last: Report | None) -> None:
        self.events.append(("completed", key, last))

    def trial_failed(
        self,
        key: str,
        message: str,
        *,
        will_retry: bool,
        failure_class: FailureClass = FailureClass.ERROR,
    ) -> None:
        self.events.append(("failed", key, (message, will_retry, failure_class)))


def _tune_result(report: Report) -> dict[str, Any]:
    """A report as Tune hands it to callbacks: the trial's dict plus Tune's own fields."""
    return {**report.to_dict(), "node_ip": "10.0.0.7", "training_iteration": 1, "done": False}


def test_sinks_get_typed_reports_parsed_once() -> None:
    a, b = _Sink(), _Sink()
    events = TuneEvents([a, b])
    trial = _Trial({"trial_key": "k1"})
    epoch = EpochReport(epoch=0, epochs_done=1, loss=0.7, val_accuracy=0.5, node_id="n1")
    stopped = StopRequest(FailureClass.CANCELLED, "cancelled by me").end(epochs_done=1, last=epoch)
    events.on_trial_start(0, [], trial)
    for report in (epoch, stopped):
        trial.last_result = _tune_result(report)
        events.on_trial_result(0, [], trial, trial.last_result)
    events.on_trial_complete(0, [], trial)

    assert a.events == b.events
    (_, _, first), (_, _, second), (kind, key, last) = a.events[1:]
    assert first == epoch and first.node == "n1"  # Tune's own fields stay out of the way
    assert isinstance(second, TrialEnd) and second.state == TrialState.CANCELLED
    assert (kind, key) == ("completed", "k1")
    assert last is second and b.events[-1][2] is last  # the same object: no second parse


def test_tune_bookkeeping_is_no_report_and_a_silent_trial_completes_with_none() -> None:
    sink = _Sink()
    events = TuneEvents([sink])
    trial = _Trial({"trial_key": "k2"}, last_result={"done": True, "training_iteration": 0})
    events.on_trial_result(0, [], trial, trial.last_result)
    events.on_trial_complete(0, [], trial)
    assert sink.events == [("completed", "k2", None)]


def test_a_failed_trial_reports_its_class() -> None:
    sink = _Sink()
    events = TuneEvents([sink])
    trial = _Trial({"trial_key": "k3"})
    end = TrialEnd(EndKind.FAILED, FailureClass.CODE_ERROR, "ValueError: bad option")
    events.on_trial_result(0, [], trial, _tune_result(end))
    events.on_trial_complete(0, [], trial)
    (_, _, got), (_, _, last) = sink.events
    assert got == end and last is got and got.failure_class is FailureClass.CODE_ERROR
