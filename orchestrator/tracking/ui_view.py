"""What the MLflow UI shows first for a job: its trials side by side, with their test
accuracy, training time and the params that tell them apart.

MLflow 3.17's runs page keeps the columns a person chose in the browser's localStorage, so
a fresh browser shows a job's runs with no metric or param column at all. The one view it
reads from the server is a shared view: an experiment tag `mlflow.sharedViewState.<key>`
holding the page's state as JSON (search, sort, selected columns and their order), opened
by the address's `viewStateShareKey=<key>` (the UI's own "share view" links work so). orch
writes its view into that tag (`ensure_view`), and `orch ui` prints the address that opens
it (`runs_path`). The address also picks the model-training side bar
(`workflowType=machine_learning`; the UI's default is GenAI) and the table rather than the
charts (`compareRunsMode=TABLE`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from orchestrator.protocol import MetricName, Role, Tag

VIEW_KEY = "orch-trials"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
# The flat param names of every trial's run (tracking/mlflow_store.py, `_params`) that tell
# trials apart, in the order shown.
VIEW_PARAMS = ("model", "lr", "epochs", "batch_size", "dataset", "seed")
VIEW_METRICS = (MetricName.TEST_ACCURACY, MetricName.TRAIN_TIME_S)
_TRAINING = "machine_learning"  # the UI's workflowType for model training (side bar, pages)


def _column(group: str, name: str) -> str:
    """The runs table's column key, as the UI writes it: metrics.`test_accuracy`."""
    return f"{group}.`{name}`"


def view_state() -> dict[str, Any]:
    """The runs page of a job: its trials (a search on the trial tag lifts the child runs
    out of their collapsed parent), best test accuracy first, the columns above."""
    columns = [_column("metrics", m) for m in VIEW_METRICS]
    columns += [_column("params", p) for p in VIEW_PARAMS]
    return {
        "searchFilter": f"tags.`{Tag.ROLE}` = '{Role.TRIAL}'",
        "orderByKey": _column("metrics", MetricName.TEST_ACCURACY),
        "orderByAsc": False,
        "selectedColumns": columns,
        "columnOrder": columns,
    }


def view_json() -> str:
    """The view as the tag's value."""
    return json.dumps(view_state(), sort_keys=True)


def ensure_view(client: Any, experiment_id: str, tags: Mapping[str, str] | None = None) -> None:
    """Write orch's view into the experiment's tags (`tags`: those it has, if known), once:
    again only if orch's view changed."""
    if tags is None:
        tags = client.get_experiment(experiment_id).tags
    if tags.get(VIEW_TAG) != (value := view_json()):
        client.set_experiment_tag(experiment_id, VIEW_TAG, value)


def runs_path(experiment_id: str) -> str:
    """The job's runs page in orch's view (the part of the address after the host)."""
    query = urlencode(
        {
            "viewStateShareKey": VIEW_KEY,
            "workflowType": _TRAINING,
            "compareRunsMode": "TABLE",
        }
    )
    return f"#/experiments/{experiment_id}/runs?{query}"


def compare_path(experiment_id: str, run_ids: list[str]) -> str:
    """The MLflow UI's side-by-side comparison of runs (params, metrics, curves), with the
    model-training side bar."""
    runs, exps = json.dumps(run_ids), json.dumps([experiment_id])
    query = f"runs={quote(runs)}&experiments={quote(exps)}&workflowType={_TRAINING}"
    return f"#/compare-runs?{query}"


def job_addresses(
    tracking_uri: str, base: str, job: tuple[str, str | None] | None = None
) -> list[tuple[str, str]]:
    """(job, address of its runs page in orch's view) for `job` ((name, experiment or
    None for the job's name)), or for every job in the store, newest first. Writes the view
    into each experiment's tags first, so a store filled before orch wrote it opens the
    same way."""
    from orchestrator.tracking.mlflow_store import MlflowStore

    client = MlflowStore(tracking_uri).client
    if job:
        name, experiment = job
        exp = client.get_experiment_by_name(experiment or name)
        if exp is None or exp.lifecycle_stage == "deleted":
            return [(name, f"(no MLflow experiment {experiment or name!r} yet: submit it first)")]
        jobs = [(name, exp.experiment_id)]
    else:  # the experiments holding a job's parent run, newest job first
        ids = [e.experiment_id for e in client.search_experiments()]
        parents = (
            client.search_runs(
                ids,
                filter_string=f"tags.`{Tag.ROLE}` = '{Role.JOB}'",
                order_by=["attributes.start_time DESC"],
            )
            if ids
            else []
        )
        jobs = [(r.data.tags.get(Tag.JOB, r.info.run_name), r.info.experiment_id) for r in parents]
    for _, exp_id in jobs:
        ensure_view(client, exp_id)
    return [(name, base + runs_path(exp_id)) for name, exp_id in jobs]


def check_servable(tracking_uri: str, host: str, port: int, *, bind: bool = True) -> None:
    """`orch ui`'s arguments: what `mlflow server` would fail on after the exec (or hang
    on, for a host that does not resolve), said first in one line: a tracking URI that is a
    server already, and an interface and port this machine cannot listen on."""
    import socket

    from orchestrator.errors import OrchestratorError
    from orchestrator.stores import check_tracking_uri, redact

    check_tracking_uri(tracking_uri)
    if tracking_uri.startswith(("http://", "https://", "databricks")):
        raise OrchestratorError(
            f"the tracking URI {redact(tracking_uri)} is an MLflow server already: open it in "
            "a browser. `orch ui` serves a database store (sqlite:///..., postgresql://...)."
        )
    if not bind:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(address)
    except OSError as e:
        reason = f"unknown host {host!r}" if isinstance(e, socket.gaierror) else e.strerror
        raise OrchestratorError(
            f"--host {host} --port {port}: cannot listen there ({reason}). Use an address of "
            "this machine (127.0.0.1, or 0.0.0.0 for every interface) and a free port "
            "(1024 and above need no root)."
        ) from None
