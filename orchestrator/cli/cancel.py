"""`orch cancel JOB`: stop a job's unfinished trials (and its Ray Job, if it has one)."""

from __future__ import annotations

import getpass
import socket
import time

import typer

from orchestrator.cli.render import console
from orchestrator.cli.text import safe
from orchestrator.config import workspace
from orchestrator.ledger import TERMINAL, Ledger
from orchestrator.protocol import FailureClass, JobState, MlflowStatus, Tag, TrialState


def cancel(job: str = typer.Argument(..., help="Job name (see `orch status`).")) -> None:
    """Cancel JOB: running trials stop after their current epoch (checkpoint kept)."""
    from orchestrator.cli.status import find_job
    from orchestrator.scheduling.adapters.control import Control
    from orchestrator.scheduling.policy.failures import CANCELLED

    ws = workspace()
    ledger = Ledger(ws.ledger_url, create=False)
    view = find_job(ledger, job)
    control = Control(ws.storage)
    reason = f"cancelled by {getpass.getuser()}@{socket.gethostname()}"
    open_trials = [t for t in view.trials if t.state not in TERMINAL]
    if not open_trials:  # a finished job stays what it is: nothing was cancelled
        console.print(
            f"job {safe(view.name)} [{safe(view.state)}]: nothing to cancel, all "
            f"{len(view.trials)} trial(s) have ended. See `orch status {safe(view.name)}`.",
            highlight=False,
        )
        return
    for t in open_trials:
        control.request_stop(t.key, failure_class=CANCELLED, reason=reason)
    if view.ray_job_id and view.ray_address:
        from orchestrator.scheduling.adapters.rayjobs import client

        c = client(view.ray_address)
        c.stop_job(view.ray_job_id)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not c.get_job_status(view.ray_job_id).is_terminal():
            time.sleep(1)
        console.print(f"Ray job {view.ray_job_id}: {c.get_job_status(view.ray_job_id)}")
    view = find_job(ledger, job)
    if view.owner is None:  # no live driver will record the stop: do it here
        _mark_cancelled(ledger, ws.tracking_uri, view.name, reason)
        console.print(f"job {safe(view.name)}: {len(open_trials)} unfinished trial(s) cancelled.")
    else:
        console.print(
            f"job {safe(view.name)}: asked {len(open_trials)} trial(s) to stop after "
            f"their current epoch; driver {view.owner} records it."
        )


def _mark_cancelled(ledger: Ledger, tracking_uri: str, job: str, reason: str) -> None:
    from orchestrator.stores import bound_mlflow_http
    from orchestrator.tracking.mlflow_store import TAG_STATE, MlflowStore

    bound_mlflow_http()  # a tracking server that is down costs seconds here, not minutes
    store = MlflowStore(tracking_uri)
    view = ledger.job(job)
    assert view is not None
    for t in view.trials:
        if t.state in TERMINAL:
            continue
        ledger.end_attempt(
            job,
            t.key,
            outcome=TrialState.CANCELLED,
            failure_class=FailureClass.CANCELLED,
            message=reason,
        )
        if t.mlflow_run_id:
            store.set_tags(t.mlflow_run_id, {TAG_STATE: TrialState.CANCELLED, Tag.ERROR: reason})
            store.end_run(t.mlflow_run_id, MlflowStatus.KILLED)
    ledger.set_job_state(job, JobState.CANCELLED)
