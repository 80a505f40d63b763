"""A real trial (Keras on the digits data, no Ray) reports its provenance, the recorder
tags its MLflow run with it, and the table read back from MLflow shows it per cell."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from orchestrator.protocol import EpochReport, Report
from orchestrator.report.table import build_table
from orchestrator.spec.load import parse_job
from orchestrator.tracking.mlflow_store import MlflowStore
from orchestrator.tracking.recorder import Recorder
from orchestrator.tracking.runs import fetch_records
from orchestrator.training.loop import run_trial

pytestmark = pytest.mark.integration


def test_a_trained_run_carries_its_provenance(tmp_path: Path) -> None:
    job = parse_job(
        {
            "job": {"name": "prov"},
            "trial": [
                {
                    "name": "LeNet",
                    "model": "lenet5",
                    "dataset": "digits",
                    "epochs": 1,
                    "data": {"train_size": 200},
                }
            ],
        },
        "prov.toml",
    )
    trial = job.trials[0]
    reports: list[Report] = []
    run_trial(trial, storage=str(tmp_path / "storage"), report=reports.append)
    assert isinstance(reports[0], EpochReport) and reports[0].provenance is not None
    p = reports[0].provenance
    assert p["tensorflow"] and p["keras"] and p["orch_commit"] and len(p["data_sha256"]) == 64
    assert p["gpu"] == "CPU" and "seed=0" in p["determinism"] and "cuda" not in p  # no GPU

    ledger = Ledger(f"sqlite:///{tmp_path / 'orch.db'}")
    ledger.register_job(job)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    rec = Recorder(job, MlflowStore(uri, str(tmp_path / "art")), ledger)
    rec.trial_started(trial.key)
    for r in reports:
        rec.trial_result(trial.key, r)
    rec.trial_completed(trial.key, reports[-1])
    tags = rec.store.client.get_run(rec.run_id(trial.key)).data.tags
    assert tags["orch.prov.data_sha256"] == p["data_sha256"]
    assert tags["orch.prov.python"] == p["python"]
    (row,) = build_table(fetch_records(uri, "prov"))
    assert row.provenance["tensorflow"] == p["tensorflow"] and row.provenance_differs == ()
