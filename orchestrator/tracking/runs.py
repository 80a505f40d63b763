"""Reads a job's trial runs back from MLflow as RunRecords (for the table and report).

Needs only the tracking URI: another user pointing at the same server gets the same table,
without orch's ledger.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.report.records import RunRecord
from orchestrator.tracking.mlflow_store import TAG_JOB, TAG_KEY, TAG_ROLE, TAG_STATE, MlflowStore


def fetch_records(store: MlflowStore, job: str, experiment: str | None = None) -> list[RunRecord]:
    exp_id = store.experiment_id(experiment or job, create=False)
    if exp_id is None:
        raise OrchestratorError(
            f"no MLflow experiment {experiment or job!r} at {store.tracking_uri}. "
            "Submit the job first, or point ORCH_TRACKING_URI at the right store."
        )
    runs = store.client.search_runs(
        [exp_id], filter_string=f"tags.`{TAG_ROLE}` = 'trial' and tags.`{TAG_JOB}` = '{job}'",
        max_results=50_000, order_by=["attributes.start_time ASC"],
    )
    return [_record(r) for r in runs]


def _record(run: Any) -> RunRecord:
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    return RunRecord(
        run_id=run.info.run_id,
        trial_key=tags.get(TAG_KEY, ""),
        name=run.info.run_name or tags.get("mlflow.runName", ""),
        model=params.get("model", ""),
        state=tags.get(TAG_STATE, run.info.status),
        gpu=tags.get("orch.hardware"),
        batch_size=_int(params.get("batch_size")),
        epochs=_int(params.get("epochs")),
        epochs_done=int(metrics.get("epochs_done", 0)),
        params=_int(metrics.get("params")),
        train_time_s=metrics.get("train_time_s"),
        test_accuracy=metrics.get("test_accuracy"),
        seed=_int(params.get("seed")),
        error=tags.get("orch.error"),
        reference={k.removeprefix("orch.ref."): v for k, v in tags.items()
                   if k.startswith("orch.ref.")},
        start_time_ms=run.info.start_time or 0,
    )


def _int(v: Any) -> int | None:
    try:
        return int(float(v)) if v not in (None, "", "None") else None
    except (TypeError, ValueError):
        return None
