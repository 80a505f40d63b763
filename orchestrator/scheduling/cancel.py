"""`orch cancel`: stop a job's unfinished trials, and its Ray Job if it has one.

Each unfinished trial gets a stop request through the shared storage path (it ends after
its current epoch, checkpoint kept). A live driver records the stop itself; with none,
the ledger and MLflow are brought up to date here.
"""

from __future__ import annotations

import getpass
import socket
import time
from dataclasses import dataclass

from orchestrator.config import Workspace, workspace
from orchestrator.ledger import TERMINAL, Ledger
from orchestrator.ledger.lookup import find_job
from orchestrator.protocol import FailureClass, JobState, MlflowStatus, Tag, TrialState

RAY_JOB_STOP_WAIT_S = 60.0  # how long to wait for a stopped Ray Job to say it has ended


@dataclass(frozen=True)
class CancelOutcome:
    job: str
    state: str  # the job's state as found (what a job with nothing to cancel stays)
    trials: int  # all trials of the job
    stopped: int  # unfinished trials asked to stop; 0: nothing was cancelled
    ray_job_id: str | None = None  # the job's Ray Job, stopped, if it had one
    ray_job_status: str | None = None  # its status once stopped (or after the wait)
    driver: str | None = None  # the live driver that records the stop; None: recorded here


def cancel_job(
    job: str,
    ws: Workspace | None = None,
    *,
    reason: str | None = None,
    ray_wait_s: float = RAY_JOB_STOP_WAIT_S,
) -> CancelOutcome:
    """Cancel JOB (a name or job file). A job whose trials have all ended stays as it is."""
    from orchestrator.scheduling.adapters.control import Control

    ws = ws or workspace()
    ledger = Ledger(ws.ledger_url, create=False)
    view = find_job(ledger, job)
    open_trials = [t for t in view.trials if t.state not in TERMINAL]
    if not open_trials:
        return CancelOutcome(view.name, view.state, len(view.trials), 0)
    reason = reason or f"cancelled by {getpass.getuser()}@{socket.gethostname()}"
    control = Control(ws.storage)
    for t in open_trials:
        control.request_stop(t.key, failure_class=FailureClass.CANCELLED, reason=reason)
    ray_status = None
    if view.ray_job_id and view.ray_address:
        ray_status = _stop_ray_job(view.ray_job_id, view.ray_address, ray_wait_s)
    view = find_job(ledger, job)
    if view.owner is None:  # no live driver will record the stop: do it here
        _mark_cancelled(ledger, ws.tracking_uri, view.name, reason)
    return CancelOutcome(
        view.name,
        view.state,
        len(view.trials),
        len(open_trials),
        ray_job_id=view.ray_job_id if ray_status is not None else None,
        ray_job_status=ray_status,
        driver=view.owner,
    )


def _stop_ray_job(ray_job_id: str, address: str, wait_s: float) -> str:
    """Stops the Ray Job and waits (bounded) for it to end; returns its status."""
    from orchestrator.scheduling.adapters.rayjobs import client

    c = client(address)
    c.stop_job(ray_job_id)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and not c.get_job_status(ray_job_id).is_terminal():
        time.sleep(1)
    return f"{c.get_job_status(ray_job_id)}"


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
