"""Reads a job's trial runs back from MLflow as RunRecords (for the table and report).

Needs only the tracking URI and the job name: another user pointing at the same server gets
the same table, without orch's ledger. The table never reads metric histories (those are
for the report's learning curves: `metric_histories`), only each run's tags, params and
latest metric values, in bulk:

- through MLflow's client: one paged search_runs (any tracking URI, http(s) included);
- directly from the tables of a database-backed store (sqlite, postgresql, mysql, mssql URIs),
  5 queries in all, without importing MLflow. MLflow's SQL store builds an ORM object per
  tag, param and metric of every run, ~50 per run: for 2,000 runs 1.6 s (3.9 s with the
  GC running) on a 2-core machine, against 0.3 s for the plain rows, and importing MLflow
  costs another 2-4 s (benchmarks/RESULTS.md). It reads MLflow's experiments, runs, tags,
  params and latest_metrics tables; a test checks that both ways give the same records
  (SQLite and PostgreSQL), and any database error falls back to the client.
"""

from __future__ import annotations

import gc
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.protocol import MetricName, Role, Tag, trial_state
from orchestrator.report.records import RunRecord
from orchestrator.tracking.mlflow_store import MlflowStore
from orchestrator.tracking.provenance import from_tags as provenance_from_tags

PAGE = 1000  # runs per search_runs page (MLflow caps a page at 50,000)
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")  # database-backed MLflow stores
log = logging.getLogger(__name__)


def fetch_records(
    store: MlflowStore | str,
    job: str,
    experiment: str | None = None,
    *,
    direct_sql: bool | None = None,
) -> list[RunRecord]:
    """Every live trial run of `job`. `store` may be an MlflowStore or a tracking URI.

    The experiment defaults to the job's name; when no experiment has that name (the job
    file set `experiment = ...`), every experiment is searched for runs tagged with the job.
    direct_sql: read a database-backed store's tables directly (default: when the URI is
    one; then MLflow is not even imported); False always goes through MLflow's client.
    """
    uri = store if isinstance(store, str) else store.tracking_uri
    if direct_sql is None:
        direct_sql = uri.split(":", 1)[0].split("+", 1)[0] in SQL_SCHEMES
    with _gc_paused():
        if direct_sql:
            import sqlalchemy.exc

            try:
                return _fetch_sql(uri, job, experiment)
            except (sqlalchemy.exc.SQLAlchemyError, _UseClient) as e:
                log.info("not reading MLflow's tables directly (%s): using its client", e)
        store = MlflowStore(store) if isinstance(store, str) else store
        exp_ids = _experiment_ids(store, experiment or job, search_all=experiment is None)
        return _fetch_client(store, exp_ids, job)


class _UseClient(Exception):
    """The direct read cannot answer as MLflow's client would: ask the client."""


def _fetch_client(store: MlflowStore, exp_ids: list[str], job: str) -> list[RunRecord]:
    flt = f"tags.`{Tag.ROLE}` = '{Role.TRIAL}'"
    if "'" not in job:  # MLflow's filter grammar has no escape for quotes: filter below
        flt += f" and tags.`{Tag.JOB}` = '{job}'"
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
        for run in page:
            if run.data.tags.get(Tag.JOB) == job:
                info = run.info
                records.append(
                    _record(
                        info.run_id,
                        info.run_name,
                        info.status,
                        info.start_time,
                        info.experiment_id,
                        run.data.tags,
                        run.data.params,
                        run.data.metrics,
                    )
                )
        token = page.token
        if not token:
            return records


# The job's live trial runs, as a filter on MLflow's `runs` table (alias r).
_RUNS_OF_JOB = """
    r.experiment_id IN :exp_ids AND r.lifecycle_stage = 'active'
    AND r.run_uuid IN (SELECT run_uuid FROM tags WHERE key = :role_key AND value = :role)
    AND r.run_uuid IN (SELECT run_uuid FROM tags WHERE key = :job_key AND value = :job)
"""


def _fetch_sql(uri: str, job: str, experiment: str | None) -> list[RunRecord]:
    import sqlalchemy as sa

    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise _UseClient("no such SQLite file")  # connecting would create an empty one
    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            exp_ids = _sql_experiment_ids(conn, experiment or job, experiment is None)
            args = {
                "exp_ids": exp_ids,
                "role_key": Tag.ROLE,
                "role": str(Role.TRIAL),
                "job_key": Tag.JOB,
                "job": job,
            }

            def query(sql: str) -> Any:
                stmt = sa.text(sql).bindparams(sa.bindparam("exp_ids", expanding=True))
                return conn.execute(stmt, args).all()

            runs = query(
                "SELECT r.run_uuid, r.name, r.status, r.start_time, r.experiment_id FROM runs r"
                f" WHERE {_RUNS_OF_JOB} ORDER BY r.start_time, r.run_uuid"
            )
            found: dict[str, list[dict[str, Any]]] = {}
            for table, columns in _VALUES.items():
                by_run: dict[str, dict[str, Any]] = {r[0]: {} for r in runs}
                for row in query(
                    f"SELECT x.run_uuid, x.key, {columns} FROM {table} x"
                    f" JOIN runs r ON r.run_uuid = x.run_uuid WHERE {_RUNS_OF_JOB}"
                ):
                    # MLflow keeps a NaN metric as value 0 with is_nan set.
                    by_run[row[0]][row[1]] = (
                        row[2] if table != "latest_metrics" else math.nan if row[3] else row[2]
                    )
                found[table] = [by_run[r[0]] for r in runs]
    finally:
        engine.dispose()
    return [
        _record(r[0], r[1], r[2], r[3], str(r[4]), tags, params, metrics)
        for r, tags, params, metrics in zip(
            runs, found["tags"], found["params"], found["latest_metrics"], strict=True
        )
    ]


_VALUES = {"tags": "x.value", "params": "x.value", "latest_metrics": "x.value, x.is_nan"}


def _sql_experiment_ids(conn: Any, name: str, search_all: bool) -> list[int]:
    """As the client resolves them: the live experiment of that name, else (search_all)
    every live experiment. Several MLflow workspaces are the client's business."""
    import sqlalchemy as sa

    live = "SELECT experiment_id, workspace FROM experiments WHERE lifecycle_stage = 'active'"
    rows = conn.execute(sa.text(live + " AND name = :name"), {"name": name}).all()
    if not rows and search_all:
        rows = conn.execute(sa.text(live)).all()
    if not rows:
        raise _UseClient(f"no experiment {name!r}")  # the client says so, in its words
    if len({w for _, w in rows}) > 1:
        raise _UseClient("experiments in several MLflow workspaces")
    return [int(e) for e, _ in rows]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """MLflow's SQL store builds an ORM object per tag, param and metric of every run
    (~50 per run). The cyclic GC, triggered by those allocations, scans them over and
    over: on 2,000 runs it was 3/4 of fetch_records' time (10 s -> 2.5 s without it).
    Nothing here makes reference cycles worth collecting mid-way."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
    store: MlflowStore | str, run_ids: Iterable[str], key: str = MetricName.VAL_ACCURACY
) -> dict[str, list[tuple[int, float]]]:
    """run id -> [(step, value)] of one metric, sorted by step (one query per run)."""
    store = MlflowStore(store) if isinstance(store, str) else store
    out: dict[str, list[tuple[int, float]]] = {}
    for run_id in run_ids:
        history = store.client.get_metric_history(run_id, key)
        by_step = {m.step: m.value for m in sorted(history, key=lambda m: m.timestamp)}
        out[run_id] = sorted(by_step.items())
    return out


def _record(
    run_id: str,
    run_name: str | None,
    status: str,
    start_time: int | None,
    experiment_id: str,
    tags: Mapping[str, str],
    params: Mapping[str, str],
    metrics: Mapping[str, float],
) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        trial_key=tags.get(Tag.TRIAL_KEY, ""),
        name=run_name or tags.get("mlflow.runName", ""),
        model=params.get("model", ""),
        state=trial_state(tags.get(Tag.STATE), default=trial_state(status)),
        gpu=_hardware(tags),
        batch_size=_int(params.get("batch_size")),
        epochs=_int(params.get("epochs")),
        epochs_done=_int(metrics.get(MetricName.EPOCHS_DONE)) or 0,
        params=_int(metrics.get(MetricName.PARAMS)),
        train_time_s=metrics.get(MetricName.TRAIN_TIME_S),
        test_accuracy=metrics.get(MetricName.TEST_ACCURACY),
        seed=_int(params.get("seed")),
        error=tags.get(Tag.ERROR),
        reference={
            k.removeprefix(Tag.REF_PREFIX): v
            for k, v in tags.items()
            if k.startswith(Tag.REF_PREFIX)
        },
        start_time_ms=start_time or 0,
        group=tags.get(Tag.GROUP, ""),
        position=_int(tags.get(Tag.POSITION)),
        dataset=params.get("dataset", ""),
        mixed_hardware=tags.get(Tag.MIXED_HARDWARE, "").lower() == "true",
        images_per_s=metrics.get(MetricName.IMAGES_PER_S),
        experiment_id=experiment_id,
        provenance=provenance_from_tags(tags),
    )


def _hardware(tags: Mapping[str, str]) -> str | None:
    """orch.hardware, else the GPU name and count tags the recorder also writes."""
    if tags.get(Tag.HARDWARE):
        return tags[Tag.HARDWARE]
    name = tags.get(Tag.GPU)
    if not name:
        return None
    count = _int(tags.get(Tag.GPU_COUNT)) or 0
    return name if count <= 1 else f"{name} x{count}"


def _int(v: Any) -> int | None:
    try:
        return int(float(v)) if v not in (None, "", "None") else None
    except (TypeError, ValueError, OverflowError):
        return None
