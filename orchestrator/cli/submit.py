"""`orch submit JOB.toml`: run every unfinished trial, then print the benchmark table."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.render import console
from orchestrator.config import workspace
from orchestrator.spec.load import load_job
from orchestrator.spec.model import JobSpec


def submit(
    job_file: Path = typer.Argument(..., help="The job file (TOML).", show_default=False),
    force: bool = typer.Option(False, "--force", help="Retrain every trial from scratch."),
    address: str = typer.Option(
        None, "--address", help="Ray cluster address; default: an embedded local Ray."
    ),
) -> None:
    """Submit a job: train its unfinished trials on Ray, track them in MLflow."""
    job = load_job(job_file)
    run_job(job, job_file.read_text(encoding="utf-8"), force=force, address=address)


def run_job(job: JobSpec, spec_text: str | None, *, force: bool = False,
            address: str | None = None) -> None:
    """Run a loaded job with the live display, then print its table (submit and resume)."""
    from orchestrator.cli.table import print_table

    ws = workspace()
    from orchestrator.ledger import Ledger

    ledger = Ledger(ws.ledger_url)
    done = set() if force else ledger.finished_keys(job.name) & {t.key for t in job.trials}
    todo = len(job.trials) - len(done)
    console.print(
        f"job [bold]{job.name}[/]: {len(job.trials)} trials, {len(done)} already finished, "
        f"{todo} to run" + (" (--force)" if force else "")
    )
    from orchestrator.scheduling.submit import submit as run_submit

    if todo:
        from orchestrator.cli.live import LiveDisplay

        with LiveDisplay(job, skipped=done) as display:
            outcome = run_submit(job, ws, force=force, address=address, sinks=[display],
                                 spec_text=spec_text)
        console.print()
    else:
        outcome = run_submit(job, ws, force=False, address=address, spec_text=spec_text)
    print_table(job.name, job.experiment_name)
    if not outcome.ok:
        console.print(
            f"[red]{len(outcome.unfinished)} trial(s) did not finish:[/] "
            + ", ".join(outcome.unfinished)
            + ". See `orch status "
            + job.name
            + "`."
        )
        raise typer.Exit(1)
