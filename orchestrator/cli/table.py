"""`orch table JOB`: the benchmark table, rebuilt from MLflow alone."""

from __future__ import annotations

import typer

from orchestrator.cli.job_output import print_rows
from orchestrator.report.table import DEFAULT_NOISE_PP, DEFAULT_SIGMAS


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
    from orchestrator.report.job_table import check_options, load_rows, resolve_job_name

    check_options(fmt, noise, sigmas)
    name, experiment = resolve_job_name(job)
    rows = load_rows(
        name,
        experiment,
        noise_pp=noise,
        sigmas=sigmas,
        normalize_to=normalize_to,
        require_runs=True,
    )
    print_rows(name, rows, fmt)
