"""`orch submit`: register the job, skip what is finished, run the rest on Ray.

Idempotent by content key: a trial whose key the ledger has FINISHED is skipped; an
unfinished one continues from its own last checkpoint. `force` forgets all of that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.config import Workspace
from orchestrator.ledger import FINISHED, Ledger
from orchestrator.scheduling.events import TrialSink
from orchestrator.spec.model import JobSpec
from orchestrator.training.checkpoint import CheckpointStore


@dataclass(frozen=True)
class SubmitOutcome:
    job: str
    skipped: tuple[str, ...]  # trial names already finished
    ran: tuple[str, ...]
    unfinished: tuple[str, ...]  # ran but did not finish (failed, diverged)

    @property
    def ok(self) -> bool:
        return not self.unfinished


def submit(
    job: JobSpec,
    ws: Workspace,
    *,
    force: bool = False,
    address: str | None = None,
    sinks: Sequence[TrialSink] = (),
) -> SubmitOutcome:
    from orchestrator.tracking.mlflow_store import MlflowStore
    from orchestrator.tracking.recorder import Recorder

    ledger = Ledger(ws.ledger_url)
    ledger.register_job(job)
    store = MlflowStore(ws.tracking_uri, ws.artifact_root)
    if force:
        keys = {t.key for t in job.trials}
        for key in keys:
            CheckpointStore(ws.storage, key).clear()
        exp_id = store.experiment_id(job.experiment_name)
        assert exp_id is not None
        store.delete_trial_runs(exp_id, keys)
        ledger.reset_trials(job.name, keys)
    done = ledger.finished_keys(job.name)
    pending = [t for t in job.trials if t.key not in done]
    skipped = tuple(t.name for t in job.trials if t.key in done)
    if not pending:
        return SubmitOutcome(job.name, skipped, (), ())

    recorder = Recorder(job, store, ledger)
    for trial in job.trials:  # runs exist up front, in file order: the table shows them all
        recorder.run_id(trial.key)
    from orchestrator.scheduling.runtime import connect
    from orchestrator.scheduling.tuner import run_trials

    connect(address or ws.ray_address)
    try:
        run_trials(job, pending, ws.storage, [recorder, *sinks])
    finally:
        finished = ledger.finished_keys(job.name)
        unfinished = tuple(t.name for t in pending if t.key not in finished)
        recorder.job_finished("FINISHED" if not unfinished else "FAILED")
    return SubmitOutcome(job.name, skipped, tuple(t.name for t in pending), unfinished)


__all__ = ["FINISHED", "SubmitOutcome", "submit"]
