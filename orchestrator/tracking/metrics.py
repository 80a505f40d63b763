"""Prometheus metrics of a running job, exported through Ray's metrics agent.

MetricsSink is a TrialSink (scheduling/adapters/events.py): the driver feeds it the same trial
events as the MLflow recorder, and it keeps gauges and counters (ray.util.metrics) that
every Ray node's agent serves on its metrics export port, next to Ray's own series. Ray
exports an application metric `orch_x` as `ray_orch_x`, a counter with a `_total` suffix
(see `exported_name`), and adds the labels Component, NodeAddress, SessionName, Version
and WorkerId. dashboards/grafana/orch.json queries the exported names; its test checks
each against METRICS.

Recording needs a connected Ray (ray.init); before that, and without Ray, the sink only
keeps its state, so it is safe to construct anywhere.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestrator.failures import classify
from orchestrator.protocol import EpochReport, FailureClass, Report, TrialEnd, TrialState
from orchestrator.protocol import failure_class as as_failure_class
from orchestrator.scheduling.policy.gputypes import slug
from orchestrator.spec.model import JobSpec

STATES = (  # the states a trial of a running job can be in
    TrialState.PENDING,
    TrialState.RUNNING,
    TrialState.RETRYING,
    TrialState.FINISHED,
    TrialState.FAILED,
    TrialState.DIVERGED,
    TrialState.CANCELLED,
)
OPEN = (TrialState.PENDING, TrialState.RUNNING, TrialState.RETRYING)  # work still to do
TRIAL_TAGS = ("job", "trial", "model")
WORK_TAGS = ("job", "model", "gpu_type")


@dataclass(frozen=True)
class MetricDef:
    kind: str  # "gauge" | "counter"
    description: str
    tags: tuple[str, ...]


METRICS: dict[str, MetricDef] = {
    "orch_trials": MetricDef(
        "gauge", "Trials of a job by state (" + ", ".join(STATES) + ").", ("job", "state")
    ),
    "orch_trial_epochs_done": MetricDef("gauge", "Epochs a trial has completed.", TRIAL_TAGS),
    "orch_trial_epochs_planned": MetricDef("gauge", "Epochs a trial trains in all.", TRIAL_TAGS),
    "orch_trial_epochs_per_second": MetricDef(
        "gauge",
        "A trial's speed at its last epoch: 1 / epoch time (fit + validation).",
        TRIAL_TAGS,
    ),
    "orch_trial_images_per_second": MetricDef(
        "gauge", "Training images per second in a trial's last epoch (fit only).", TRIAL_TAGS
    ),
    "orch_trial_val_accuracy": MetricDef(
        "gauge", "A trial's validation accuracy after its last epoch (0-1).", TRIAL_TAGS
    ),
    "orch_trial_eta_seconds": MetricDef(
        "gauge", "Seconds a running trial still needs at its last epoch's speed.", TRIAL_TAGS
    ),
    "orch_job_eta_seconds": MetricDef(
        "gauge",
        "Seconds until the job's last trial finishes: the planner's estimate when it sets "
        "one, else remaining epochs at measured speeds over the running trials.",
        ("job",),
    ),
    "orch_epochs": MetricDef(
        "counter", "Epochs trained (replayed epochs after a failure count again).", WORK_TAGS
    ),
    "orch_images": MetricDef("counter", "Training images processed.", WORK_TAGS),
    "orch_trial_failures": MetricDef(
        "counter",
        "Trial failures by class (node_lost, oom, diverged, code_error, infeasible, "
        "cancelled, driver_lost, error), retried or final.",
        ("job", "model", "failure_class"),
    ),
}


def exported_name(name: str) -> str:
    """The series name Prometheus scrapes for METRICS[name]: 'orch_epochs' ->
    'ray_orch_epochs_total'."""
    return f"ray_{name}" + ("_total" if METRICS[name].kind == "counter" else "")


class MetricsSink:
    """Trial events -> orch_* metrics for one job. `finished`: keys of trials that submit
    skipped because they were already finished (they count as FINISHED)."""

    def __init__(self, job: JobSpec, *, finished: Iterable[str] = ()) -> None:
        self.job = job
        self.trials = {t.key: t for t in job.trials}
        done = set(finished)
        self.state: dict[str, TrialState] = {
            k: TrialState.FINISHED if k in done else TrialState.PENDING for k in self.trials
        }
        self.epochs_done = {k: (t.epochs if k in done else 0) for k, t in self.trials.items()}
        self.epoch_time_s: dict[str, float] = {}
        self._eta_override: float | None = None
        self._metrics: dict[str, Any] | None = None
        # Kept up to date by _change at each event, not recounted over the whole grid:
        # a recount per event made a 10,000-trial job quadratic.
        self._counts: Counter[str] = Counter()
        self._known_work = 0.0  # open trials with a measured speed: their seconds left
        self._open_known = 0  # how many of them
        self._unknown_epochs = 0  # open trials without one: their epochs left
        self._time_sum = 0.0  # over every measured epoch time (the mean stands in)
        for k in self.trials:
            self._tally(k, +1)
        self._publish_states()

    # -- TrialSink --------------------------------------------------------------------------
    def trial_started(self, key: str) -> None:
        self._change(key, state=TrialState.RUNNING)
        self._publish_states()

    def trial_result(self, key: str, report: Report) -> None:
        if not isinstance(report, EpochReport):
            return  # trial_completed ends the trial with its class
        trial = self.trials[key]
        self._change(key, epochs_done=int(report.epochs_done))
        tags = self._trial_tags(key)
        self._set("orch_trial_epochs_done", self.epochs_done[key], tags)
        self._set("orch_trial_epochs_planned", trial.epochs, tags)
        if report.val_accuracy is not None:
            self._set("orch_trial_val_accuracy", float(report.val_accuracy), tags)
        epoch_s = report.epoch_time_s
        if epoch_s:
            self._change(key, epoch_time_s=float(epoch_s))
            self._set("orch_trial_epochs_per_second", 1.0 / float(epoch_s), tags)
            work = {
                "job": self.job.name,
                "model": trial.model,
                "gpu_type": slug(str(report.gpu_name or "cpu")),
            }
            self._inc("orch_epochs", 1, work)
            ips = report.images_per_s
            if ips:
                self._set("orch_trial_images_per_second", float(ips), tags)
                # images of this epoch = speed x fit time; fit time ~ epoch time
                self._inc("orch_images", float(ips) * float(epoch_s), work)
        self._publish_eta(key)

    def trial_completed(self, key: str, last: Report | None) -> None:
        if self.state.get(key) in (TrialState.FAILED, TrialState.CANCELLED, TrialState.DIVERGED):
            return  # the driver already ended it (e.g. infeasible)
        if isinstance(last, TrialEnd):
            self._end(key, last.state, last.failure_class)
        else:
            self._change(key, state=TrialState.FINISHED, epochs_done=self.trials[key].epochs)
            self._set("orch_trial_eta_seconds", 0.0, self._trial_tags(key))
            self._publish_states()

    def trial_failed(
        self,
        key: str,
        message: str,
        *,
        will_retry: bool,
        failure_class: FailureClass | None = None,
    ) -> None:
        cls = classify(message) if failure_class is None else as_failure_class(failure_class)
        if will_retry:
            self._count_failure(key, cls)
            self._change(key, state=TrialState.RETRYING)
            self._publish_states()
        else:
            self._end(key, TrialState.FAILED, cls)

    # -- hooks -----------------------------------------------------------------------------
    def set_eta(self, seconds: float | None) -> None:
        """The planner's estimate of the job's remaining time; None returns to the sink's
        own estimate."""
        self._eta_override = seconds
        self._publish_job_eta()

    def job_eta_s(self) -> float | None:
        """Remaining epochs of unfinished trials at their measured epoch times (a trial
        without one yet: the mean of the others), spread over the running trials."""
        if self._eta_override is not None:
            return self._eta_override
        if not self.epoch_time_s:
            return None
        mean = self._time_sum / len(self.epoch_time_s)
        known = self._known_work if self._open_known else 0.0  # no float residue
        work = max(0.0, known) + mean * self._unknown_epochs
        return work / max(1, self._counts[TrialState.RUNNING])

    def _change(
        self,
        key: str,
        *,
        state: TrialState | None = None,
        epochs_done: int | None = None,
        epoch_time_s: float | None = None,
    ) -> None:
        """Every change of a trial's state, progress or speed, and of the job's tallies
        with it: the trial's old share out, the new one in."""
        self._tally(key, -1)
        if state is not None:
            self.state[key] = state
        if epochs_done is not None:
            self.epochs_done[key] = epochs_done
        if epoch_time_s is not None:
            self._time_sum += epoch_time_s - self.epoch_time_s.get(key, 0.0)
            self.epoch_time_s[key] = epoch_time_s
        self._tally(key, +1)

    def _tally(self, key: str, sign: int) -> None:
        self._counts[self.state[key]] += sign
        if self.state[key] not in OPEN:
            return
        left = self.trials[key].epochs - self.epochs_done[key]
        seconds = self.epoch_time_s.get(key)
        if seconds is None:
            self._unknown_epochs += sign * left
        else:
            self._known_work += sign * left * seconds
            self._open_known += sign

    # -- recording ---------------------------------------------------------------------------
    def _end(self, key: str, state: TrialState, cls: FailureClass) -> None:
        self._count_failure(key, cls)
        self._change(key, state=state)
        self._set("orch_trial_eta_seconds", 0.0, self._trial_tags(key))
        self._publish_states()

    def _count_failure(self, key: str, cls: FailureClass) -> None:
        model = self.trials[key].model
        self._inc(
            "orch_trial_failures", 1, {"job": self.job.name, "model": model, "failure_class": cls}
        )

    def _publish_states(self) -> None:
        for state in STATES:  # zeros too: a state a trial left must drop, not linger
            n = self._counts[state]
            self._set("orch_trials", n, {"job": self.job.name, "state": state})
        self._publish_job_eta()

    def _publish_eta(self, key: str) -> None:
        epoch_s = self.epoch_time_s.get(key)
        if epoch_s is not None:
            left = max(0, self.trials[key].epochs - self.epochs_done[key]) * epoch_s
            self._set("orch_trial_eta_seconds", left, self._trial_tags(key))
        self._publish_job_eta()

    def _publish_job_eta(self) -> None:
        eta = self.job_eta_s()
        if eta is not None:
            self._set("orch_job_eta_seconds", eta, {"job": self.job.name})

    def _trial_tags(self, key: str) -> dict[str, str]:
        t = self.trials[key]
        return {"job": self.job.name, "trial": t.name, "model": t.model}

    def _set(self, name: str, value: float, tags: dict[str, str]) -> None:
        metric = self._metric(name)
        if metric is not None:
            with contextlib.suppress(Exception):  # metrics must never break a job
                metric.set(value, tags=tags)

    def _inc(self, name: str, value: float, tags: dict[str, str]) -> None:
        metric = self._metric(name)
        if metric is not None and value > 0:
            with contextlib.suppress(Exception):
                metric.inc(value, tags=tags)

    def _metric(self, name: str) -> Any:
        if self._metrics is None:
            try:
                import ray
            except ImportError:
                return None
            if not ray.is_initialized():
                return None  # created on the first event after ray.init
            self._metrics = _create_metrics()
        return self._metrics.get(name)


def _create_metrics() -> dict[str, Any]:
    from ray.util.metrics import Counter, Gauge

    kinds = {"gauge": Gauge, "counter": Counter}
    out: dict[str, Any] = {}
    for name, d in METRICS.items():
        with contextlib.suppress(Exception):  # metrics must never break a job
            out[name] = kinds[d.kind](name, description=d.description, tag_keys=d.tags)
    return out
