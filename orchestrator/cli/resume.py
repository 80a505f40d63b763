"""`orch resume JOB`: continue a job from the ledger, as it was submitted."""

from __future__ import annotations

import typer

from orchestrator.scheduling.adapters.address import given


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
    run_job(job_as_submitted(view), view.spec_text, address=address)
