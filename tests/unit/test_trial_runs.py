"""The MLflow runs of a job's trials, found in one paginated search for the whole job
(MlflowStore.trial_runs) instead of one search per trial, on a real SQLite MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.spec.load import load_job
from orchestrator.tracking import mlflow_store
from orchestrator.tracking.mlflow_store import MlflowStore

JOB = """
[job]
name = "runs"
[defaults]
dataset = "digits"
model = "lenet5"
epochs = 1
seeds = [0, 1, 2, 3, 4]
[[trial]]
name = "t"
"""


def test_one_search_finds_every_trial_run_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.toml"
    path.write_text(JOB)
    trials = load_job(path).trials
    store = MlflowStore(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "artifacts"))
    exp = store.experiment_id("runs")
    assert exp is not None
    parent = store.job_run(exp, "runs")
    assert store.trial_runs(exp) == {}  # the job run is no trial run
    ids = [store.trial_run(exp, parent, "runs", t, i) for i, t in enumerate(trials[:4])]
    store.end_run(ids[1], "KILLED")
    store.client.delete_run(ids[3])  # --force sends old runs to the trash: not found
    monkeypatch.setattr(mlflow_store, "RUNS_PAGE", 2)  # three pages of the 3 live runs
    known = store.trial_runs(exp)
    assert {k: r.run_id for k, r in known.items()} == {trials[i].key: ids[i] for i in range(3)}
    assert known[trials[1].key].status == "KILLED"

    # A resumed job: its trial runs are reused from what was read, with no search, and
    # made RUNNING again; a trial without one gets a new run.
    def no_search(*args: object, **kwargs: object) -> None:
        raise AssertionError("searched for a run that was known")

    monkeypatch.setattr(store, "_find", no_search)
    assert store.trial_run(exp, parent, "runs", trials[1], 1, known=known) == ids[1]
    assert store.client.get_run(ids[1]).info.status == "RUNNING"
    new = store.trial_run(exp, parent, "runs", trials[4], 4, known=known)
    assert new not in ids and store.client.get_run(new).data.tags["orch.trial_key"] == trials[4].key
