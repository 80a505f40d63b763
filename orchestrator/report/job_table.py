"""A job's benchmark table, rebuilt from its MLflow runs alone (`orch table`, the table
`orch submit` prints, and the table under the report).

Reads the workspace's tracking store; MLflow is imported only inside the functions.
"""

from __future__ import annotations

import math
from pathlib import Path

from orchestrator.config import workspace
from orchestrator.errors import OrchestratorError
from orchestrator.report.formats import FORMATS
from orchestrator.report.table import DEFAULT_NOISE_PP, DEFAULT_SIGMAS, Row, build_table

TABLE_FORMATS = ("rich", *FORMATS)  # rich: the terminal's table; the rest are text


def resolve_job_name(job: str) -> tuple[str, str | None]:
    """JOB may be a job name or a job file; a file gives its name and experiment."""
    if job.endswith(".toml") or Path(job).is_file():
        from orchestrator.spec.load import load_job

        spec = load_job(job)
        return spec.name, spec.experiment_name
    return job, None


def check_options(fmt: str | None, noise_pp: float, sigmas: float) -> None:
    """--format (None: not asked), --noise and --sigmas, before any MLflow read."""
    if fmt is not None and fmt not in TABLE_FORMATS:
        raise OrchestratorError(
            f"--format: unknown format {fmt!r}. Use one of {', '.join(TABLE_FORMATS)}."
        )
    if not 0 <= noise_pp < math.inf:
        raise OrchestratorError(
            f"--noise: must be a finite number >= 0 (points of accuracy). Received: "
            f"--noise={noise_pp}"
        )
    if not 0 < sigmas < math.inf:
        raise OrchestratorError(
            f"--sigmas: must be a finite number > 0. Received: --sigmas={sigmas}"
        )


def load_rows(
    job: str,
    experiment: str | None = None,
    *,
    noise_pp: float = DEFAULT_NOISE_PP,
    sigmas: float = DEFAULT_SIGMAS,
    normalize_to: str | None = None,
    require_runs: bool = False,
) -> list[Row]:
    """The table's rows from the job's runs in the workspace's tracking store. A store
    that does not exist reads as empty; with require_runs, no runs is an error."""
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
