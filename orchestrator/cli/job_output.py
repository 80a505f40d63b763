"""What several commands print about a job: its run in this terminal (submit, resume),
its benchmark table (submit, resume, table) and the report written (submit, report).

A rendering helper shared by commands, like render.py: the work is done by the library
(scheduling/, report/); this module only shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

from orchestrator.cli.render import benchmark_table, console
from orchestrator.cli.text import plain, plain_json, safe
from orchestrator.protocol import JobState

if TYPE_CHECKING:
    from orchestrator.report.job_report import WrittenReport
    from orchestrator.report.table import Row
    from orchestrator.spec.model import JobSpec


def print_rows(job: str, rows: Sequence[Row], fmt: str = "rich") -> None:
    """The benchmark table in the terminal (rich) or as text in one of report.formats."""
    if fmt == "rich":
        console.print(benchmark_table(rows, title=f"{job}: benchmark (from MLflow)"))
        return
    from orchestrator.report.formats import render

    # Run names come from a shared tracking store: no control character reaches the terminal.
    text = render(rows, fmt, job)
    typer.echo(plain_json(text) if fmt == "json" else plain(text, newlines=True), nl=False)


def print_written_report(written: WrittenReport) -> None:
    console.print(
        f"Report: {safe(written.path)}  ({written.rows} rows, {written.runs} runs)",
        highlight=False,
        soft_wrap=True,
    )


def run_job(
    job: JobSpec,
    spec_text: str | None,
    *,
    force: bool = False,
    address: str | None = None,
    update: bool = False,
) -> None:
    """Run a loaded job here with the live display, then print its table; exit 1 when a
    trial did not finish."""
    from orchestrator.config import workspace
    from orchestrator.report.job_table import load_rows
    from orchestrator.scheduling.preflight import preflight
    from orchestrator.scheduling.submit import submit

    ws = workspace()
    done = preflight(job, ws, force=force, address=address, update=update)
    todo = len(job.trials) - len(done)
    console.print(
        f"job [bold]{safe(job.name)}[/]: {len(job.trials)} trials, {len(done)} already finished, "
        f"{todo} to run" + (" (--force)" if force else "")
    )
    if todo:
        from orchestrator.cli.live import LiveDisplay

        with LiveDisplay(job, skipped=set(done)) as display:
            outcome = submit(
                job,
                ws,
                force=force,
                address=address,
                sinks=[display],
                spec_text=spec_text,
                update=update,
            )
        console.print()
    else:
        outcome = submit(job, ws, force=False, address=address, spec_text=spec_text, update=update)
    print_rows(job.name, load_rows(job.name, job.experiment_name))
    _publish(job)
    if not outcome.ok:
        cancelled = "job cancelled: " if outcome.state == JobState.CANCELLED else ""
        console.print(
            f"[red]{cancelled}{len(outcome.unfinished)} trial(s) did not finish:[/] "
            + ", ".join(safe(n) for n in outcome.unfinished)
            + ". See `orch status "
            + safe(job.name)
            + "`."
        )
        raise typer.Exit(1)


def _publish(job: JobSpec) -> None:
    """Table (md, CSV) and report as artifacts of the job's parent run, for the MLflow UI.
    Best effort: the job has run; a failure here only costs the artifacts."""
    from orchestrator.report.job_report import publish_results

    try:
        written = publish_results(job.name, job.experiment_name)
    except Exception as e:  # never fail a finished job over its artifacts
        console.print(f"[yellow]note:[/] could not attach the table/report to MLflow: {e}")
        return
    print_written_report(written)
