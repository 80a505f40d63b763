"""Fails trials that can no longer run, instead of letting Tune wait on them forever.

A trial is given up when it has been PENDING for `grace_s` while no alive node (nor a node
type the job says an autoscaler can add) could ever hold it — typically because its only
suitable node died. It gets a stop request (so it ends at once should it start later) and
an INFEASIBLE failure; when nothing else is left to run, the experiment ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ray.tune import Callback, Stopper

from orchestrator.protocol import FailureClass, TuneStatus
from orchestrator.scheduling.adapters.control import Control
from orchestrator.scheduling.adapters.events import TrialSink
from orchestrator.scheduling.adapters.searcher import KeyFeeder
from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.feasibility import describe_request, fits, largest_by_type
from orchestrator.spec.model import TrialSpec


class InfeasibleWatchdog(Callback, Stopper):
    def __init__(
        self,
        specs: dict[str, TrialSpec],
        control: Control,
        sinks: Sequence[TrialSink],
        nodes: Callable[[], list[NodeInfo]],
        grace_s: float = 120.0,
        period_s: float = 2.0,
        feeder: KeyFeeder | None = None,
    ) -> None:
        self.specs, self.control, self.sinks, self.nodes = specs, control, list(sinks), nodes
        self.feeder = feeder  # hands Tune its trials lazily (searcher.py)
        self.grace_s, self.period_s = grace_s, period_s
        self.first_seen: dict[str, float] = {}
        self.given_up: set[str] = set()
        self.unfinished: set[str] = set(specs)
        self._last = 0.0

    def __getstate__(self) -> dict[str, Any]:  # see TuneEvents.__getstate__
        return {"given_up": set(), "unfinished": set(), "feeder": None}

    # -- Callback -------------------------------------------------------------------
    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.period_s:
            return
        self._last = now
        self.unfinished = {
            str(t.config["trial_key"])
            for t in trials
            if t.status not in (TuneStatus.TERMINATED, TuneStatus.ERROR)
        }
        pending = [str(t.config["trial_key"]) for t in trials if t.status == TuneStatus.PENDING]
        pending = [k for k in pending if k not in self.given_up]
        if not pending:
            self.first_seen.clear()
            return
        nodes = self.nodes()
        for key in pending:
            res = self.specs[key].resources
            if any(fits(res, n) for n in nodes):
                self.first_seen.pop(key, None)
                continue
            since = self.first_seen.setdefault(key, now)
            if now - since >= self.grace_s:
                self._give_up(key, nodes)

    def _give_up(self, key: str, nodes: list[NodeInfo]) -> None:
        spec = self.specs[key]
        reason = (
            f"infeasible: no node left can hold {describe_request(spec.resources)} "
            f"(waited {self.grace_s:.0f} s). Largest node of each type: "
            f"{largest_by_type(nodes)}"
        )
        self.given_up.add(key)
        if self.feeder is not None:  # its slot of max_concurrent goes to the next trial
            self.feeder.release(key)
        self.control.request_stop(key, failure_class=FailureClass.INFEASIBLE, reason=reason)
        for s in self.sinks:
            s.trial_failed(key, reason, will_retry=False, failure_class=FailureClass.INFEASIBLE)

    # -- Stopper --------------------------------------------------------------------
    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        """End the experiment once every unfinished trial has been given up (and Tune has
        been handed every trial: those not yet created are unfinished too)."""
        handed_out = self.feeder is None or self.feeder.exhausted
        return bool(self.given_up) and self.unfinished <= self.given_up and handed_out
