"""`orch table JOB`: the benchmark table, rebuilt from MLflow alone."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.render import benchmark_table, console
from orchestrator.config import workspace
from orchestrator.report.table import build_table, to_markdown


def resolve_job_name(job: str) -> tuple[str, str | None]:
    """JOB may be a job name or a job file; a file gives its name and experiment."""
    if job.endswith(".toml") or Path(job).is_file():
        from orchestrator.spec.load import load_job

        spec = load_job(job)
        return spec.name, spec.experiment_name
    return job, None


def print_table(job: str, experiment: str | None = None, fmt: str = "rich") -> None:
    from orchestrator.tracking.mlflow_store import MlflowStore
    from orchestrator.tracking.runs import fetch_records

    ws = workspace()
    rows = build_table(fetch_records(MlflowStore(ws.tracking_uri), job, experiment))
    if fmt == "md":
        typer.echo(to_markdown(rows), nl=False)
    else:
        console.print(benchmark_table(rows, title=f"{job}: benchmark (from MLflow)"))


def table(
    job: str = typer.Argument(..., help="Job name or job file."),
    fmt: str = typer.Option("rich", "--format", "-f", help="rich | md"),
) -> None:
    """Print the benchmark table of JOB, built from its MLflow runs."""
    name, experiment = resolve_job_name(job)
    if fmt not in ("rich", "md"):
        from orchestrator.errors import OrchestratorError

        raise OrchestratorError(f"--format: unknown format {fmt!r}. Use rich or md.")
    print_table(name, experiment, fmt)
