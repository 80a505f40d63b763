"""`orch report JOB`: a self-contained HTML report (table, plots, learning curves, run
links) from the job's MLflow runs, under .orch/reports/<job>/."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.job_output import print_written_report
from orchestrator.report.table import DEFAULT_NOISE_PP, DEFAULT_SIGMAS


def report(
    job: str = typer.Argument(..., help="Job name or job file."),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Directory for index.html and the PNGs (default: .orch/reports/JOB/).",
    ),
    normalize_to: str = typer.Option(
        None,
        "--normalize-to",
        help='Convert training time to this hardware (e.g. "GTX 1080 Ti") with measured '
        "speed ratios.",
    ),
    noise: float = typer.Option(
        DEFAULT_NOISE_PP, "--noise", help="Noise band in accuracy points for a single run."
    ),
    sigmas: float = typer.Option(
        DEFAULT_SIGMAS, "--sigmas", help="With several seeds: reproduced within SIGMAS x std."
    ),
) -> None:
    """Write an HTML report of JOB: the table, accuracy plots and learning curves."""
    from orchestrator.report.job_report import write_job_report

    written = write_job_report(job, out, normalize_to=normalize_to, noise_pp=noise, sigmas=sigmas)
    print_written_report(written)
