"""The walking skeleton end to end, through the real `orch` CLI: a real local Ray, a real
MLflow SQLite store, real Keras training on a few hundred digits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from orchestrator.zoo import estimate_cost
from tests.conftest import run_orch

pytestmark = pytest.mark.integration

TINY = """
[job]
name = "tiny"

[defaults]
dataset = "digits"
data = { train_size = 300, test_size = 100 }
epochs = 2
batch_size = 32
recipe = { lr = 0.05, augment = "none", preprocess = "meanstd" }
resources = { cpus = 1 }

[[trial]]
name = "LeNet-5"
model = "lenet5"
checkpoint = { save_model = true }

[[trial]]
name = "ResNet-8"
model = "resnet"
model_args = { depth = 8 }
"""


def test_submit_tracks_skips_and_tables(tmp_path: Path) -> None:
    job = tmp_path / "tiny.toml"
    job.write_text(TINY)
    home = tmp_path / ".orch"
    env = {"ORCH_HOME": str(home)}

    first = run_orch("submit", str(job), env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 to run" in first.stdout

    # MLflow: a parent run, two child runs, per-epoch metrics at step=epoch, final metrics.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("orch.role") == "job"]
    children = [r for r in runs if r.data.tags.get("orch.role") == "trial"]
    assert len(parents) == 1 and len(children) == 2
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")]
        assert steps == [0, 1]
        m = run.data.metrics
        assert 0.0 <= m["test_accuracy"] <= 1.0 and m["train_time_s"] > 0
        # the exact count of what was built, known without building it
        model, args = {"LeNet-5": ("lenet5", {}), "ResNet-8": ("resnet", {"depth": 8})}[
            run.info.run_name
        ]
        assert m["params"] == estimate_cost(model, num_classes=10, **args).params
        assert run.data.params["batch_size"] == "32" and run.data.tags["orch.gpu"] == "CPU"
        # a training epoch keeps its process busy; percent of the cores it may use
        assert 0 < m["system/cpu_utilization_percentage"] <= 110
        # For comparing runs in the MLflow UI: resolved config, architecture, final model.
        files = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"trial.json", "model_summary.txt"} <= files
        if run.info.run_name == "LeNet-5":
            assert [a.path for a in client.list_artifacts(run.info.run_id, "model")] == [
                "model/model.keras"
            ]

    # Ledger: both trials finished, with their runs.
    view = Ledger(f"sqlite:///{home / 'orch.db'}").job("tiny")
    assert view is not None and view.state == "FINISHED"
    assert [(t.name, t.state, t.epochs_done) for t in view.trials] == [
        ("LeNet-5", "FINISHED", 2),
        ("ResNet-8", "FINISHED", 2),
    ]
    assert {t.mlflow_run_id for t in view.trials} == {r.info.run_id for r in children}

    # The table, rebuilt from MLflow alone.
    table = run_orch("table", "tiny", "--format", "md", env=env, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    rows = [
        ln
        for ln in table.stdout.splitlines()
        if ln.startswith("| LeNet-5") or ln.startswith("| ResNet-8")
    ]
    assert len(rows) == 2 and all("| CPU |" in r and "| 32 | 2 |" in r for r in rows)

    # A second submit trains nothing and logs nothing twice.
    t0 = time.monotonic()
    second = run_orch("submit", str(job), env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "2 already finished, 0 to run" in second.stdout
    assert time.monotonic() - t0 < 60
    assert "LeNet-5" in second.stdout and "ResNet-8" in second.stdout
    runs_after = client.search_runs([exp.experiment_id])
    assert len(runs_after) == 3
    for run in children:
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 2

    status = run_orch("status", "tiny", env=env, cwd=tmp_path)
    assert status.returncode == 0 and status.stdout.count("FINISHED") >= 3
