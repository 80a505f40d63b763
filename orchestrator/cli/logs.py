"""`orch logs JOB`: the driver's output of a job submitted as a Ray Job."""

from __future__ import annotations

import typer

from orchestrator.cli.render import console
from orchestrator.cli.text import safe
from orchestrator.errors import OrchestratorError


def logs(
    job: str = typer.Argument(..., help="Job name (see `orch status`)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Stream until the job ends."),
) -> None:
    """Print the logs of JOB's Ray Job (its driver), and each failed trial's error."""
    from orchestrator.ledger.lookup import read_job

    view = read_job(job)
    errors = [(t.name, t.error) for t in view.trials if t.error]
    if not view.ray_job_id:
        if not errors:
            raise OrchestratorError(
                f"job {view.name!r} ran in a local terminal, not as a Ray Job: its output was "
                "that terminal. Trial logs are in Ray's session folder (/tmp/ray/session_*)."
            )
    else:
        from orchestrator.scheduling.adapters.rayjobs import client

        c = client(view.ray_address or "")
        if follow:
            import asyncio

            async def tail() -> None:
                async for chunk in c.tail_job_logs(view.ray_job_id):
                    print(chunk, end="", flush=True)

            asyncio.run(tail())
        else:
            print(c.get_job_logs(view.ray_job_id), end="")
    for name, error in errors:
        console.print(f"[red]trial {safe(name)}:[/] {safe(error)}")
