"""`orch resume JOB`: continue a job from the ledger, as it was submitted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from orchestrator.scheduling.adapters.address import given

if TYPE_CHECKING:
    from orchestrator.spec.model import JobSpec


def resume(
    job: str = typer.Argument(..., help="Job name (see `orch status`)."),
    address: str = typer.Option(None, "--address", callback=given, help="Ray cluster address."),
) -> None:
    """Continue every unfinished trial of JOB from its last checkpoint; skip finished ones.

    Uses the job file's text as it was submitted (kept in the ledger), so the trials keep
    their keys even if the file has been edited since."""
    from orchestrator.cli.job_output import run_job
    from orchestrator.ledger.lookup import job_as_submitted, read_job

    view = read_job(job)
    spec = job_as_submitted(view)
    _check_results_readable(spec, view.spec_path)
    run_job(spec, view.spec_text, address=address)


def _check_results_readable(spec: JobSpec, spec_path: str) -> None:
    """A job with nothing left to run only prints its table: when its SQLite tracking
    store is empty or gone there is none to print, and resume refuses before it creates
    the store (an empty mlflow.db would say the job had recorded nothing there)."""
    from orchestrator.config import workspace
    from orchestrator.errors import OrchestratorError
    from orchestrator.ledger.repository import Ledger
    from orchestrator.stores import redact, sqlite_path, tracking_for_read

    ws = workspace()
    if sqlite_path(ws.tracking_uri) is None:  # a server: preflight probes it
        return
    done = Ledger(ws.ledger_url, create=False).finished_keys(spec.name)
    if not {t.key for t in spec.trials} <= done or tracking_for_read(ws.tracking_uri):
        return
    raise OrchestratorError(
        f"job {spec.name!r}: every trial is finished, but the MLflow store at "
        f"{redact(ws.tracking_uri)} is empty or gone, so there are no results to show. "
        "Point ORCH_TRACKING_URI at the store the job ran with, or run it again with "
        f"`orch submit {spec_path} --force`."
    )
