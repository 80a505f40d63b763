"""Records trial events in MLflow and the ledger, from the driver.

The scheduler turns Ray Tune's callbacks into these events (see scheduling/adapters/events.py), so
this code is independent of Tune and easy to test. Per-epoch results become MLflow metrics
at step=epoch (each step once, even when a retried trial reports an epoch again) and
ledger progress; the last epoch's result carries test metrics.

Failures: a trial's process reports deterministic problems itself (`failed` / `diverged`
/ `stopped` results) and is not retried; what reaches Tune as an error is classified here,
counted against the trial's `max_retries` unless it is infrastructure (a lost node), and a
trial over budget gets a stop request so its next attempt ends at once.

Lost time: compute that a failure threw away — epochs reported but not checkpointed, and
the epoch in progress — goes to `lost_time_s`; `train_time_s` stays compute that counts.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from orchestrator.failures import classify, counts_against_budget
from orchestrator.ledger import Ledger
from orchestrator.protocol import (
    EpochReport,
    FailureClass,
    JobState,
    MetricName,
    MlflowStatus,
    Report,
    Tag,
    TrialEnd,
    TrialState,
)
from orchestrator.protocol import failure_class as as_failure_class
from orchestrator.scheduling.adapters.control import Control
from orchestrator.scheduling.policy.gputypes import slug
from orchestrator.spec.model import JobSpec, TrialSpec
from orchestrator.tracking.mlflow_store import MlflowStore
from orchestrator.tracking.outbox import Outbox
from orchestrator.tracking.provenance import tags as provenance_tags

log = logging.getLogger(__name__)
# Attempts after which even infrastructure failures stop being retried: a node that dies
# every time is not bad luck.
MAX_ATTEMPTS = 20


class Recorder:
    def __init__(
        self,
        job: JobSpec,
        store: MlflowStore,
        ledger: Ledger,
        control: Control | None = None,
        on_wait: Callable[[str | None], None] | None = None,
    ) -> None:
        self.job, self.ledger, self.control = job, ledger, control
        # Writes to MLflow go through the outbox: buffered and retried while the tracker
        # is away, so no trial fails or waits because tracking is down (outbox.py).
        self.store = Outbox(store, on_wait=self._tracker_waiting)
        self._on_wait = on_wait
        ledger.on_wait = on_wait  # type: ignore[attr-defined]  # a reconnecting ledger: shown
        self.trials = {t.key: t for t in job.trials}
        self.position = {t.key: i for i, t in enumerate(job.trials)}
        self.exp_id = store.experiment_id(job.experiment_name)
        assert self.exp_id is not None
        self.parent_id = store.job_run(self.exp_id, job.name, job.description)
        ledger.set_job_state(job.name, JobState.RUNNING, mlflow_run_id=self.parent_id)
        self._run_ids: dict[str, str] = {}
        # The runs an earlier submit of the job left (a resume), read once: not searched
        # for trial by trial (MlflowStore.trial_runs).
        known = store.trial_runs(self.exp_id)  # the experiment may hold other jobs too
        self._known_runs = {k: r for k, r in known.items() if k in self.trials}
        self._run_lock = threading.Lock()
        self._tagged: set[str] = set()
        self._final: dict[str, str] = {}  # key -> terminal state decided before completion
        self._attempt: dict[str, dict[str, Any]] = {}  # per running attempt: times, progress
        self._macs: dict[str, int | None] = {}

    def run_id(self, key: str) -> str:
        # Under a lock: submit creates every run from a thread while trials start.
        with self._run_lock:
            return self._run_id(key)

    def _run_id(self, key: str) -> str:
        if key not in self._run_ids:
            trial: TrialSpec = self.trials[key]
            run_id = self.store.trial_run(
                self.exp_id,
                self.parent_id,
                self.job.name,
                trial,
                position=self.position[key],
                known=self._known_runs,
            )
            self._run_ids[key] = run_id
            self.ledger.update_trial(self.job.name, key, mlflow_run_id=run_id)
        return self._run_ids[key]

    # -- events -------------------------------------------------------------------------
    def trial_started(self, key: str) -> None:
        if key in self._final:
            # Already ended by the driver (budget spent, infeasible): Tune relaunched it
            # only for it to read its stop request and end at once. Not an attempt.
            return
        self._tagged.discard(key)  # a new attempt may run on other hardware: tag again
        self._attempt[key] = {"started": time.monotonic(), "last_ckpt": None, "first": True}
        self.ledger.start_attempt(self.job.name, key, node=None, start_epoch=0)
        self.store.set_tags(self.run_id(key), {Tag.STATE: TrialState.RUNNING})

    def trial_result(self, key: str, report: Report) -> None:
        run_id = self.run_id(key)
        if isinstance(report, TrialEnd):
            # trial_completed turns it into the terminal state with its message; the
            # epoch that came with it (a divergence) may be the attempt's first report.
            if key not in self._tagged and report.last is not None:
                self._tag_hardware(key, run_id, report.last)
            self._tagged.add(key)
            return
        if key not in self._tagged:
            self._tag_hardware(key, run_id, report)
        attempt = self._attempt.setdefault(key, {"started": time.monotonic(), "first": True})
        if attempt.pop("first", False):
            self.ledger.note_attempt(
                self.job.name, key, node=report.node, start_epoch=report.resumed_from or 0
            )
            if report.epoch_time_s is not None and report.train_time_s is not None:
                self._count_replayed_work(key, run_id, report)
        if report.model_summary is not None:
            self.store.log_text(run_id, report.model_summary, "model_summary.txt")
        if report.model_path:
            self.store.log_artifact(run_id, report.model_path, "model")
        if report.accuracy is not None:  # a trained epoch (not the test-only report)
            self.store.log_epoch(run_id, int(report.epoch), report.epoch_metrics())
            self._learn_speed(key, report)
        if report.test_accuracy is not None:
            self.store.log_final(run_id, int(report.epoch), report.final_metrics())
        if report.checkpointed is None or report.checkpointed:  # unsaid: it was
            attempt["last_ckpt"] = time.monotonic()
        self.ledger.update_trial(
            self.job.name,
            key,
            epochs_done=report.epochs_done,
            last_accuracy=report.val_accuracy,
            test_accuracy=report.test_accuracy,
            epoch_time_s=report.epoch_time_s,
            train_time_s=report.train_time_s,
            node=report.node,
            gpu=report.gpu_label,
        )

    def trial_completed(self, key: str, last: Report | None) -> None:
        """`last`: the trial's last report (None: it reported nothing Tune kept)."""
        run_id = self.run_id(key)
        self._attempt.pop(key, None)
        if key in self._final:  # already failed by the driver (infeasible): keep that
            return
        if isinstance(last, TrialEnd):
            self._end(key, run_id, last.state, last.failure_class, last.message)
        else:
            self.ledger.end_attempt(self.job.name, key, outcome=TrialState.FINISHED)
            self.store.set_tags(run_id, {Tag.STATE: TrialState.FINISHED})
            self.store.end_run(run_id, MlflowStatus.FINISHED)

    def trial_failed(
        self,
        key: str,
        message: str,
        *,
        will_retry: bool,
        failure_class: FailureClass | None = None,
    ) -> None:
        run_id = self.run_id(key)
        cls = classify(message) if failure_class is None else as_failure_class(failure_class)
        self._count_lost_attempt(key, run_id)
        if not will_retry:
            self._final[key] = TrialState.FAILED
            self._end(key, run_id, TrialState.FAILED, cls, message)
            return
        view = self._trial_view(key)
        counted = view.counted_failures + (1 if counts_against_budget(cls) else 0)
        budget = self.trials[key].resources.max_retries
        self.ledger.update_trial(self.job.name, key, counted_failures=counted)
        if self.control is not None and (counted > budget or view.attempts >= MAX_ATTEMPTS):
            # Budget spent: the trial ends FAILED now, after max_retries + 1 attempts. Tune
            # retries everything; its relaunch reads the stop request and ends at once.
            reason = (
                f"{cls}: gave up after {view.attempts} attempts ({counted} counted against "
                f"max_retries={budget}): {message}"
            )
            self.control.request_stop(key, failure_class=cls, reason=reason)
            self._final[key] = TrialState.FAILED
            self._end(key, run_id, TrialState.FAILED, cls, reason)
            return
        self.ledger.end_attempt(
            self.job.name, key, outcome=TrialState.RETRYING, failure_class=cls, message=message
        )
        self.store.set_tags(
            run_id,
            {Tag.STATE: TrialState.RETRYING, Tag.ERROR: message[:4000], Tag.FAILURE_CLASS: cls},
        )

    def job_finished(self, state: str) -> None:
        self.ledger.set_job_state(self.job.name, state)
        status = {JobState.FINISHED: MlflowStatus.FINISHED, JobState.CANCELLED: MlflowStatus.KILLED}
        self.store.end_run(self.parent_id, status.get(JobState(state), MlflowStatus.FAILED))
        self.flush()

    def flush(self) -> None:
        """Wait until MLflow has every buffered write (a tracker still away: up to
        ORCH_TRACKING_WAIT_S, then say what is missing)."""
        from orchestrator.config import env_seconds

        wait_s = env_seconds("ORCH_TRACKING_WAIT_S", 3600.0, strict=False)
        if not self.store.flush(wait_s):
            log.error(
                "MLflow at %s did not come back within %.0f s: %d update(s) of job %s were "
                "not recorded there (the ledger has the trials' states)",
                self.store.tracking_uri,
                wait_s,
                self.store.pending,
                self.job.name,
            )

    def _tracker_waiting(self, what: str | None) -> None:
        with contextlib.suppress(Exception):  # the ledger may be away too: not fatal
            self.ledger.set_waiting(self.job.name, what)
        if self._on_wait is not None:
            self._on_wait(what)

    # -- helpers --------------------------------------------------------------------------
    def _end(
        self, key: str, run_id: str, state: TrialState, cls: FailureClass, message: str
    ) -> None:
        self.ledger.end_attempt(
            self.job.name, key, outcome=state, failure_class=cls, message=message
        )
        self.store.set_tags(
            run_id, {Tag.STATE: state, Tag.ERROR: message[:4000], Tag.FAILURE_CLASS: cls}
        )
        killed = state == TrialState.CANCELLED
        self.store.end_run(run_id, MlflowStatus.KILLED if killed else MlflowStatus.FAILED)

    def _trial_view(self, key: str) -> Any:
        return self.ledger.trial(self.job.name, key)

    def _add_lost(self, key: str, run_id: str, seconds: float) -> None:
        if seconds <= 0:
            return
        view = self._trial_view(key)
        lost = view.lost_time_s + seconds
        self.ledger.update_trial(self.job.name, key, lost_time_s=lost)
        # step = attempt number: one value per attempt, so no step is logged twice
        self.store.log_metric(run_id, MetricName.LOST_TIME_S, lost, step=view.attempts)

    def _count_lost_attempt(self, key: str, run_id: str) -> None:
        """A failed attempt lost everything since its last checkpoint (or its start)."""
        attempt = self._attempt.pop(key, None)
        if attempt is not None:
            since = attempt.get("last_ckpt") or attempt["started"]
            self._add_lost(key, run_id, time.monotonic() - since)

    def _count_replayed_work(self, key: str, run_id: str, report: EpochReport) -> None:
        """First epoch of an attempt: compute reported before but not checkpointed (e.g.
        after a driver crash, which no failure event announced) is lost work."""
        base = float(report.train_time_s or 0.0) - float(report.epoch_time_s or 0.0)
        reported = self._trial_view(key).train_time_s
        if reported is not None and reported > base + 1e-6:
            self._add_lost(key, run_id, reported - base)

    def _learn_speed(self, key: str, report: EpochReport) -> None:
        name, epoch_s = report.gpu_name, report.epoch_time_s
        if not name or not report.images_per_s or not epoch_s:
            return
        from orchestrator.spec.cost import efficiency_sample

        # The cost model learns measured / predicted epoch time per (model family, GPU type)
        # (spec/cost.py); the ledger keeps it as an average under the key "family@type".
        gpu = slug(str(name)) if str(name) != "CPU" else "cpu"
        sample = efficiency_sample(self.trials[key], gpu, float(epoch_s))
        if sample is not None:
            self.ledger.record_speed(*sample)

    def _tag_hardware(self, key: str, run_id: str, report: EpochReport) -> None:
        tags = report.hardware_tags()
        tags.update(provenance_tags(report.provenance or {}))  # orch.prov.*
        label = report.gpu_label

        def write(store: MlflowStore, _retry: bool) -> None:  # in order, via the outbox
            if label:
                # A trial resumed on another GPU type ran on mixed hardware: say so.
                prior = store.client.get_run(run_id).data.tags.get(Tag.HARDWARE)
                seen = {x for x in (prior or "").split(" + ") if x} | {label}
                tags[Tag.HARDWARE] = " + ".join(sorted(seen))
                tags[Tag.MIXED_HARDWARE] = len(seen) > 1
            if tags:
                store.set_tags(run_id, tags)

        if tags or label:
            self.store.put(f"hardware tags of run {run_id[:8]}", write)
        self._tagged.add(key)
