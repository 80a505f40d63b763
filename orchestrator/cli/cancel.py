"""`orch cancel JOB`: stop a job's unfinished trials (and its Ray Job, if it has one)."""

from __future__ import annotations

import typer

from orchestrator.cli.render import console
from orchestrator.cli.text import safe


def cancel(job: str = typer.Argument(..., help="Job name (see `orch status`).")) -> None:
    """Cancel JOB: running trials stop after their current epoch (checkpoint kept)."""
    from orchestrator.scheduling.cancel import cancel_job

    outcome = cancel_job(job)
    name = safe(outcome.job)
    if not outcome.stopped:  # a finished job stays what it is: nothing was cancelled
        console.print(
            f"job {name} [{safe(outcome.state)}]: nothing to cancel, all "
            f"{outcome.trials} trial(s) have ended. See `orch status {name}`.",
            highlight=False,
        )
        return
    if outcome.ray_job_id:
        console.print(f"Ray job {outcome.ray_job_id}: {outcome.ray_job_status}")
    if outcome.driver is None:
        console.print(f"job {name}: {outcome.stopped} unfinished trial(s) cancelled.")
    else:
        console.print(
            f"job {name}: asked {outcome.stopped} trial(s) to stop after "
            f"their current epoch; driver {outcome.driver} records it."
        )
