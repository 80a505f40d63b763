"""`orch report JOB`: a self-contained HTML report (table, plots, learning curves, run
links) from the job's MLflow runs, under .orch/reports/<job>/."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from orchestrator.cli.render import console
from orchestrator.cli.text import safe
from orchestrator.config import workspace
from orchestrator.errors import OrchestratorError
from orchestrator.report.table import DEFAULT_NOISE_PP, DEFAULT_SIGMAS

MAX_CURVES_PER_CELL = 10  # learning curves drawn per grid cell (seeds beyond are left out)


def check_out_dir(out_dir: Path) -> None:
    """--out names a folder (created if missing; a report in it is replaced). Anything
    else in its place is an error before any MLflow read."""
    for p in (out_dir, *out_dir.parents):
        if p.exists():
            if not p.is_dir():
                what = "--out" if p == out_dir else f"--out {out_dir}: {p}"
                raise OrchestratorError(
                    f"{what} is a file, but --out names a folder for index.html and its "
                    f"PNGs. Received: --out={str(out_dir)!r}. Choose a folder (it is created)."
                )
            if not os.access(p, os.W_OK | os.X_OK):
                raise OrchestratorError(
                    f"--out {out_dir}: cannot write in {p} (permission denied). "
                    "Choose a folder you can write to."
                )
            return


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
    from orchestrator.cli.table import check_options, hardware_label, no_runs, resolve_job_name
    from orchestrator.report import plots
    from orchestrator.report.page import Settings, safe_name, write_report
    from orchestrator.report.speed import SpeedTable
    from orchestrator.report.table import build_table
    from orchestrator.tracking.mlflow_store import MlflowStore
    from orchestrator.tracking.runs import fetch_records, metric_histories

    check_options(None, noise, sigmas)
    name, experiment = resolve_job_name(job)
    from orchestrator.stores import read_records

    ws = workspace()
    out_dir = out or ws.reports_dir / safe_name(name)
    check_out_dir(out_dir)
    # A store that does not exist reads as empty (and is not created); then no report.
    records = read_records(ws.tracking_uri, lambda uri: fetch_records(uri, name, experiment))
    if not records:
        raise no_runs(name, ws.tracking_uri)
    store = MlflowStore(ws.tracking_uri)
    speeds = SpeedTable.from_records(records)
    if normalize_to:
        normalize_to = hardware_label(normalize_to, speeds.hardware())
    rows = build_table(
        records, noise_pp=noise, sigmas=sigmas, normalize_to=normalize_to, speeds=speeds
    )
    # Metric histories are one query per run: only for the curves that will be drawn.
    wanted = [i for row in rows[: plots.MAX_PANELS] for i in row.run_ids[:MAX_CURVES_PER_CELL]]
    curves = metric_histories(store, wanted, "val_accuracy")
    path = write_report(
        name,
        rows,
        records,
        curves,
        tracking_uri=ws.tracking_uri,
        out_dir=out_dir,
        settings=Settings(noise, sigmas, normalize_to),
    )
    # The MLflow UI shows the job's result beside its runs: the page on the parent run.
    store.log_job_results(name, experiment or name, {"report/index.html": path.read_text()})
    console.print(
        f"Report: {safe(path)}  ({len(rows)} rows, {len(records)} runs)",
        highlight=False,
        soft_wrap=True,
    )
