"""Ray Tune callbacks -> orch trial events, fanned out to sinks (MLflow+ledger, display).

A sink is any object with trial_started / trial_result / trial_completed / trial_failed.
Keeping Tune's API in this one adapter lets the recorder and the display be tested
without Ray. This is where the driver parses each dict a trial reported, once, into the
protocol's types (`parse_report`): the sinks read typed fields, never the dict.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

from ray.tune import Callback

from orchestrator.failures import classify
from orchestrator.protocol import FailureClass, Report, StopRequest, parse_report


class TrialSink(Protocol):
    def trial_started(self, key: str) -> None: ...

    def trial_result(self, key: str, report: Report) -> None:
        """Each report of a trial: an epoch, or its end (diverged, failed, stopped)."""

    def trial_completed(self, key: str, last: Report | None) -> None:
        """The trial's process ended; `last` is its last report (None: none)."""

    def trial_failed(
        self,
        key: str,
        message: str,
        *,
        will_retry: bool,
        failure_class: FailureClass = FailureClass.ERROR,
    ) -> None: ...


class TuneEvents(Callback):
    def __init__(self, sinks: Sequence[TrialSink]) -> None:
        self.sinks = list(sinks)
        # Each trial's last report, as parsed: what Tune keeps as the trial's last result
        # (every result passes on_trial_result before Tune stores it), not parsed again.
        self._last: dict[str, Report | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config into the experiment snapshot (tuner.pkl). The sinks
        # hold live database clients and a terminal display, meaningless in a restored
        # copy, and orch never restores from that snapshot anyway.
        return {"sinks": [], "_last": {}}

    @staticmethod
    def _key(trial: Any) -> str:
        return str(trial.config["trial_key"])

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        for s in self.sinks:
            s.trial_started(self._key(trial))

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        key = self._key(trial)
        report = self._last[key] = parse_report(result)  # the one parse of this dict
        if report is None:
            return  # Tune's own bookkeeping, no report of the trial's
        for s in self.sinks:
            s.trial_result(key, report)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        key = self._key(trial)
        last = self._last.pop(key, None)
        for s in self.sinks:
            s.trial_completed(key, last)

    def withdrawn(self, trial: Any, request: StopRequest) -> None:
        """The driver ends a trial that never started (withdraw.py): the sinks get the end
        its process would have reported on reading `request`; Tune's stop_trial, next,
        completes it (on_trial_complete)."""
        key = self._key(trial)
        end = self._last[key] = request.end()
        for s in self.sinks:
            s.trial_result(key, end)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._failed(trial, will_retry=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._last.pop(self._key(trial), None)  # it ends here: no trial_completed follows
        self._failed(trial, will_retry=False)

    def _failed(self, trial: Any, *, will_retry: bool) -> None:
        text = error_text(trial)
        message, failure_class = error_summary(text), classify(text)
        for s in self.sinks:
            s.trial_failed(
                self._key(trial), message, will_retry=will_retry, failure_class=failure_class
            )


def error_text(trial: Any) -> str:
    """The trial's latest failure as Tune recorded it (traceback or actor-death text).

    Tune appends each failure to a local error file at once and syncs it to storage
    later, so the local file is read first."""
    text = ""
    with contextlib.suppress(Exception):
        if trial.error_file:
            with open(trial.error_file) as f:
                text = f.read()
    if not text:
        with contextlib.suppress(Exception):  # the storage copy may be gone with its node
            text = str(trial.get_error() or "")
    # The file holds every failure so far; keep the last one.
    marker = text.rfind("Failure # ")
    return text[marker:] if marker >= 0 else text


def error_summary(text: str) -> str:
    """The last meaningful line of a traceback, e.g. 'DatasetError: ...'."""
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Failure # ")
    ]
    for line in reversed(lines):
        if ("Error" in line or "Exception" in line) and not line.startswith("File "):
            return line[:2000]
    return lines[-1][:2000] if lines else "trial failed (no error recorded)"
