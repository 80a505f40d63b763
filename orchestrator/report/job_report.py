"""A job's HTML report written from its MLflow runs (`orch report`, and after `orch
submit`), and the job's results attached to its parent run for the MLflow UI.

Reads and writes the workspace's tracking store; MLflow is imported only inside the
functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import workspace
from orchestrator.errors import OrchestratorError
from orchestrator.report.job_table import (
    check_options,
    hardware_label,
    no_runs,
    publish_table,
    resolve_job_name,
)
from orchestrator.report.table import DEFAULT_NOISE_PP, DEFAULT_SIGMAS

MAX_CURVES_PER_CELL = 10  # learning curves drawn per grid cell (seeds beyond are left out)


@dataclass(frozen=True)
class WrittenReport:
    path: Path  # the page, index.html
    rows: int  # rows of its table
    runs: int  # trial runs it was built from


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


def write_job_report(
    job: str,
    out: Path | None = None,
    *,
    experiment: str | None = None,
    normalize_to: str | None = None,
    noise_pp: float = DEFAULT_NOISE_PP,
    sigmas: float = DEFAULT_SIGMAS,
) -> WrittenReport:
    """The report of JOB (a name or job file) under `out` (default: the workspace's
    reports folder), also attached to the job's parent MLflow run. `experiment`: the job
    file's own MLflow experiment, when it names one and JOB is the job's name."""
    from orchestrator.report import plots
    from orchestrator.report.page import Settings, safe_name, write_report
    from orchestrator.report.speed import SpeedTable
    from orchestrator.report.table import build_table
    from orchestrator.stores import read_records
    from orchestrator.tracking.mlflow_store import MlflowStore
    from orchestrator.tracking.runs import fetch_records, metric_histories

    check_options(None, noise_pp, sigmas)
    name, in_file = resolve_job_name(job)
    experiment = experiment or in_file
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
        records, noise_pp=noise_pp, sigmas=sigmas, normalize_to=normalize_to, speeds=speeds
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
        settings=Settings(noise_pp, sigmas, normalize_to),
    )
    # The MLflow UI shows the job's result beside its runs: the page on the parent run.
    store.log_job_results(name, experiment or name, {"report/index.html": path.read_text()})
    return WrittenReport(path, len(rows), len(records))


def publish_results(job: str, experiment: str | None = None) -> WrittenReport:
    """After a run: the table (md, CSV) and the report as artifacts of the job's parent
    run, the report also under the workspace's reports folder."""
    publish_table(job, experiment)
    return write_job_report(job, experiment=experiment)
