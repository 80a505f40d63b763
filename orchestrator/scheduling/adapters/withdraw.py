"""Ends waiting trials that have a stop request in the driver, without starting them.

A stop request (`orch cancel`, a retry budget spent, an infeasible trial) is read by the
trial's own process when it starts, which then reports its end at once. For a trial that
has not started, that costs a process (a Ray worker, Tune's imports: 2-3 CPU seconds)
and, worse, the resources it waits for: cancelling a 10,000-trial grid on a 12-GPU
cluster would start every pending trial on a GPU just to end it, one GPU-slot at a time,
for the better part of an hour. Here the driver ends such a trial itself, through Tune's
own `stop_trial`: the sinks see the same end the trial would have reported (its stop
request's `end()`, as `orch_trial` reports it) and its completion, with no start between
them, because nothing started.

A trial whose actor has its resources already is left to its process (it reads the
request within seconds). A MIGRATED request is a move or a profiling stop, never an end.

The stop requests are found by listing the control folder once a period (one LIST on an
object store), not by reading one file per pending trial.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orchestrator.protocol import FailureClass, StopRequest, TuneStatus
from orchestrator.scheduling.adapters.control import Control
from orchestrator.scheduling.adapters.requeue import unqueue
from orchestrator.scheduling.adapters.searcher import KEY


class Withdraw:
    def __init__(
        self,
        control: Control,
        ended: Callable[[Any, StopRequest], None],
        *,
        period_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`ended(trial, request)`: tells the sinks the trial's end (TuneEvents.withdrawn),
        before Tune completes it."""
        self.control, self.ended = control, ended
        self.period_s, self.clock = period_s, clock
        self._last = float("-inf")
        self.withdrawn = 0  # trials ended here, never started

    def __call__(self, controller: Any) -> None:
        now = self.clock()
        if now - self._last < self.period_s or not controller._pending_trials:
            return
        self._last = now
        requested = self.control.requested()
        if not requested:
            return
        for trial in list(controller._pending_trials):
            key = str(trial.config.get(KEY))
            if key not in requested or trial.status != TuneStatus.PENDING:
                continue
            request = StopRequest.from_dict(self.control.stop_request(key))
            if request is None or request.failure_class == FailureClass.MIGRATED:
                continue
            if not unqueue(controller, trial, trial.placement_group_factory):
                continue  # its process has started: it reads the request itself
            self.ended(trial, request)
            controller.stop_trial(trial)  # Tune's own end of a pending trial
            self.withdrawn += 1
