"""`orch table JOB`: the benchmark table, rebuilt from MLflow alone."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.render import benchmark_table, console
from orchestrator.config import workspace
from orchestrator.errors import OrchestratorError
from orchestrator.report.table import DEFAULT_NOISE_PP, DEFAULT_SIGMAS, Row, build_table

TABLE_FORMATS = ("rich", "md", "csv", "html", "latex", "json")


def resolve_job_name(job: str) -> tuple[str, str | None]:
    """JOB may be a job name or a job file; a file gives its name and experiment."""
    if job.endswith(".toml") or Path(job).is_file():
        from orchestrator.spec.load import load_job

        spec = load_job(job)
        return spec.name, spec.experiment_name
    return job, None


def load_rows(
    job: str,
    experiment: str | None = None,
    *,
    noise_pp: float = DEFAULT_NOISE_PP,
    sigmas: float = DEFAULT_SIGMAS,
    normalize_to: str | None = None,
    require_runs: bool = False,
) -> list[Row]:
    from orchestrator.stores import read_records
    from orchestrator.tracking.runs import fetch_records

    uri = workspace().tracking_uri
    records = read_records(uri, lambda readable: fetch_records(readable, job, experiment))
    if require_runs and not records:
        raise no_runs(job, uri)
    speeds = None
    if normalize_to:
        from orchestrator.report.speed import SpeedTable

        speeds = SpeedTable.from_records(records)
        normalize_to = hardware_label(normalize_to, speeds.hardware())
    return build_table(
        records, noise_pp=noise_pp, sigmas=sigmas, normalize_to=normalize_to, speeds=speeds
    )


def hardware_label(wanted: str, measured: list[str]) -> str:
    """--normalize-to as the runs spell it ("gtx 1080 ti" -> "GTX 1080 Ti"), or an error
    naming the hardware this job has measured speeds on."""
    import difflib

    exact = {m.lower(): m for m in measured}
    if wanted.lower() in exact:
        return exact[wanted.lower()]
    close = difflib.get_close_matches(wanted, measured, n=1)
    hint = f' Did you mean "{close[0]}"?' if close else ""
    listed = ", ".join(f'"{m}"' for m in measured) or "none (no finished run reports images/s)"
    raise OrchestratorError(
        f'--normalize-to: no finished run of this job on "{wanted}", so no speed to '
        f"convert to. Measured on: {listed}.{hint} Received: --normalize-to={wanted!r}"
    )


def no_runs(job: str, uri: str) -> OrchestratorError:
    return OrchestratorError(
        f"no trial runs of job {job!r} in MLflow at {uri}. Submit it first "
        "(orch submit JOB.toml), or point ORCH_TRACKING_URI at the store it was tracked in."
    )


def print_table(
    job: str,
    experiment: str | None = None,
    fmt: str = "rich",
    *,
    noise_pp: float = DEFAULT_NOISE_PP,
    sigmas: float = DEFAULT_SIGMAS,
    normalize_to: str | None = None,
    require_runs: bool = False,
) -> None:
    rows = load_rows(
        job,
        experiment,
        noise_pp=noise_pp,
        sigmas=sigmas,
        normalize_to=normalize_to,
        require_runs=require_runs,
    )
    if fmt == "rich":
        console.print(benchmark_table(rows, title=f"{job}: benchmark (from MLflow)"))
        return
    from orchestrator.cli.text import plain, plain_json
    from orchestrator.report.formats import render

    # Run names come from a shared tracking store: no control character reaches the terminal.
    text = render(rows, fmt, job)
    typer.echo(plain_json(text) if fmt == "json" else plain(text, newlines=True), nl=False)


def publish_table(job: str, experiment: str | None = None) -> None:
    """The benchmark table (Markdown and CSV) as artifacts of the job's parent MLflow run."""
    from orchestrator.report.formats import to_csv, to_markdown
    from orchestrator.tracking.mlflow_store import MlflowStore

    rows = load_rows(job, experiment)
    MlflowStore(workspace().tracking_uri).log_job_results(
        job,
        experiment or job,
        {"table/benchmark.md": to_markdown(rows), "table/benchmark.csv": to_csv(rows)},
    )


def check_options(fmt: str | None, noise_pp: float, sigmas: float) -> None:
    if fmt is not None and fmt not in TABLE_FORMATS:
        raise OrchestratorError(
            f"--format: unknown format {fmt!r}. Use one of {', '.join(TABLE_FORMATS)}."
        )
    if not noise_pp >= 0:
        raise OrchestratorError(
            f"--noise: must be >= 0 (points of accuracy). Received: --noise={noise_pp}"
        )
    if not sigmas > 0:
        raise OrchestratorError(f"--sigmas: must be > 0. Received: --sigmas={sigmas}")


def table(
    job: str = typer.Argument(..., help="Job name or job file."),
    fmt: str = typer.Option(
        "rich", "--format", "-f", help="rich (terminal) | md | csv | html | latex | json"
    ),
    normalize_to: str = typer.Option(
        None,
        "--normalize-to",
        help='Convert training time to this hardware (e.g. "GTX 1080 Ti") with speed '
        "ratios measured from this job's finished runs; times without a ratio are marked.",
    ),
    noise: float = typer.Option(
        DEFAULT_NOISE_PP,
        "--noise",
        help="Noise band in accuracy points: a single run within it of the reference "
        "counts as reproduced.",
    ),
    sigmas: float = typer.Option(
        DEFAULT_SIGMAS,
        "--sigmas",
        help="With several seeds: reproduced if |mean - reference| <= SIGMAS x std "
        "(or within --noise).",
    ),
) -> None:
    """Print the benchmark table of JOB, built from its MLflow runs alone."""
    check_options(fmt, noise, sigmas)
    name, experiment = resolve_job_name(job)
    print_table(
        name,
        experiment,
        fmt,
        noise_pp=noise,
        sigmas=sigmas,
        normalize_to=normalize_to,
        require_runs=True,
    )
