"""Reads a job's trial runs back from MLflow as RunRecords (for the table and report).

Needs only the tracking URI and the job name: another user pointing at the same server gets
the same table, without orch's ledger. One paged search_runs returns every run with its
tags, params and latest metric values, so the table never queries run by run and never
reads metric histories (those are for the report's learning curves: `metric_histories`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.report.records import RunRecord
from orchestrator.tracking.mlflow_store import TAG_JOB, TAG_KEY, TAG_ROLE, TAG_STATE, MlflowStore

PAGE = 1000  # runs per search_runs page (MLflow caps a page at 50,000)
TAG_GROUP, TAG_POSITION = "orch.group", "orch.position"


def fetch_records(
    store: MlflowStore | str, job: str, experiment: str | None = None
) -> list[RunRecord]:
    """Every live trial run of `job`. `store` may be an MlflowStore or a tracking URI.

    The experiment defaults to the job's name; when no experiment has that name (the job
    file set `experiment = ...`), every experiment is searched for runs tagged with the job.
    """
    store = MlflowStore(store) if isinstance(store, str) else store
    exp_ids = _experiment_ids(store, experiment or job, search_all=experiment is None)
    flt = f"tags.`{TAG_ROLE}` = 'trial'"
    if "'" not in job:  # MLflow's filter grammar has no escape for quotes: filter below
        flt += f" and tags.`{TAG_JOB}` = '{job}'"
    records: list[RunRecord] = []
    token: str | None = None
    while True:
        page = store.client.search_runs(
            exp_ids,
            filter_string=flt,
            max_results=PAGE,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        records += [_record(r) for r in page if r.data.tags.get(TAG_JOB) == job]
        token = page.token
        if not token:
            return records


def _experiment_ids(store: MlflowStore, name: str, *, search_all: bool) -> list[str]:
    exp = store.client.get_experiment_by_name(name)  # read-only: never restores or creates
    if exp is not None and exp.lifecycle_stage != "deleted":
        return [exp.experiment_id]
    if search_all:
        ids = [e.experiment_id for e in store.client.search_experiments()]
        if ids:
            return ids
    raise OrchestratorError(
        f"no MLflow experiment {name!r} at {store.tracking_uri}. "
        "Submit the job first, or point ORCH_TRACKING_URI at the right store."
    )


def metric_histories(
    store: MlflowStore | str, run_ids: Iterable[str], key: str = "val_accuracy"
) -> dict[str, list[tuple[int, float]]]:
    """run id -> [(step, value)] of one metric, sorted by step (one query per run)."""
    store = MlflowStore(store) if isinstance(store, str) else store
    out: dict[str, list[tuple[int, float]]] = {}
    for run_id in run_ids:
        history = store.client.get_metric_history(run_id, key)
        by_step = {m.step: m.value for m in sorted(history, key=lambda m: m.timestamp)}
        out[run_id] = sorted(by_step.items())
    return out


def _record(run: Any) -> RunRecord:
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    return RunRecord(
        run_id=run.info.run_id,
        trial_key=tags.get(TAG_KEY, ""),
        name=run.info.run_name or tags.get("mlflow.runName", ""),
        model=params.get("model", ""),
        state=tags.get(TAG_STATE, run.info.status),
        gpu=_hardware(tags),
        batch_size=_int(params.get("batch_size")),
        epochs=_int(params.get("epochs")),
        epochs_done=_int(metrics.get("epochs_done")) or 0,
        params=_int(metrics.get("params")),
        train_time_s=metrics.get("train_time_s"),
        test_accuracy=metrics.get("test_accuracy"),
        seed=_int(params.get("seed")),
        error=tags.get("orch.error"),
        reference={
            k.removeprefix("orch.ref."): v for k, v in tags.items() if k.startswith("orch.ref.")
        },
        start_time_ms=run.info.start_time or 0,
        group=tags.get(TAG_GROUP, ""),
        position=_int(tags.get(TAG_POSITION)),
        dataset=params.get("dataset", ""),
        mixed_hardware=tags.get("orch.mixed_hardware", "").lower() == "true",
        images_per_s=metrics.get("images_per_s"),
        experiment_id=run.info.experiment_id,
    )


def _hardware(tags: dict[str, str]) -> str | None:
    """orch.hardware, else the GPU name and count tags the recorder also writes."""
    if tags.get("orch.hardware"):
        return tags["orch.hardware"]
    name = tags.get("orch.gpu")
    if not name:
        return None
    count = _int(tags.get("orch.gpu_count")) or 0
    return name if count <= 1 else f"{name} x{count}"


def _int(v: Any) -> int | None:
    try:
        return int(float(v)) if v not in (None, "", "None") else None
    except (TypeError, ValueError, OverflowError):
        return None
