"""The MLflow UI as the place to compare a job's runs: the experiment opens in model-training
mode (mlflow.experimentKind), the job is a parent run with a readable child run per trial,
params are flat and named alike, the table is an artifact of the parent run; and headless
Chromium takes a screenshot of the runs page (tests/artifacts/mlflow_ui.png, for people)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from orchestrator.protocol import EpochReport
from orchestrator.report.formats import to_csv, to_markdown
from orchestrator.report.table import build_table
from orchestrator.spec.load import parse_job
from orchestrator.tracking.mlflow_store import (
    EXPERIMENT_KIND,
    MlflowStore,
    compare_path,
    ui_path,
)
from orchestrator.tracking.recorder import Recorder
from orchestrator.tracking.runs import fetch_records
from tests.conftest import ORCH, ROOT, unavailable
from tests.integration.test_mlflow_ui import _free_port, _get, _stop

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOT = ROOT / "tests" / "artifacts" / "mlflow_ui.png"
COMPARE_SHOT = ROOT / "tests" / "artifacts" / "mlflow_ui_compare.png"


def _job_in_mlflow(uri: str, home: Path) -> tuple[MlflowStore, str]:
    job = parse_job(
        {
            "job": {"name": "ui-compare"},
            "defaults": {"dataset": "digits", "epochs": 3},
            "grid": [{"axes": {"model": ["lenet5", "resnet20", "nin"]}, "name": "{model}"}],
        },
        "ui.toml",
    )
    ledger = Ledger(f"sqlite:///{home / 'orch.db'}")
    ledger.register_job(job)
    store = MlflowStore(uri, str(home / "artifacts"))
    rec = Recorder(job, store, ledger)
    for i, t in enumerate(job.trials):
        rec.trial_started(t.key)
        for e in range(3):
            acc = 0.5 + 0.1 * e + 0.05 * i
            rec.trial_result(
                t.key,
                EpochReport.from_dict(
                    {
                        "epoch": e,
                        "epochs_done": e + 1,
                        "loss": 1.0 - acc,
                        "accuracy": acc,
                        "val_loss": 1.1 - acc,
                        "val_accuracy": acc,
                        "lr": 0.1,
                        "epoch_time_s": 2.0 + i,
                        "images_per_s": 500.0,
                        "train_time_s": (2.0 + i) * (e + 1),
                        "gpu_name": "CPU",
                        "gpu_count": 0,
                        "params": 62006 * (i + 1),
                        "provenance": {"tensorflow": "2.21.0", "data_sha256": "ab" * 32},
                        **({"test_accuracy": acc, "test_loss": 1.1 - acc} if e == 2 else {}),
                    }
                ),
            )
        rec.trial_completed(t.key, None)
    rec.job_finished("FINISHED")
    rows = build_table(fetch_records(uri, job.name))
    store.log_job_results(
        job.name,
        job.name,
        {"table/benchmark.md": to_markdown(rows), "table/benchmark.csv": to_csv(rows)},
    )
    exp_id = store.experiment_id(job.name, create=False)
    assert exp_id is not None
    return store, exp_id


def test_runs_compare_in_model_training_mode(tmp_path: Path) -> None:
    home = tmp_path / ".orch"
    uri = f"sqlite:///{home / 'mlflow.db'}"
    store, exp_id = _job_in_mlflow(uri, home)
    c = store.client
    assert c.get_experiment(exp_id).tags["mlflow.experimentKind"] == EXPERIMENT_KIND
    runs = c.search_runs([exp_id])
    parent = next(r for r in runs if r.data.tags.get("orch.role") == "job")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["lenet5", "nin", "resnet20"]
    names = {frozenset(r.data.params) for r in children}
    assert len(names) == 1 and {"model", "lr", "epochs", "batch_size"} <= next(iter(names))
    arts = {a.path for a in c.list_artifacts(parent.info.run_id, "table")}
    assert arts == {"table/benchmark.md", "table/benchmark.csv"}

    if CHROMIUM is None:
        unavailable("chromium is not installed: no screenshot")  # fails under CI=true
    port = _free_port()
    env = {**os.environ, "ORCH_HOME": str(home), "ORCH_TRACKING_URI": uri}
    log = (tmp_path / "ui.log").open("w")
    proc = subprocess.Popen(
        [ORCH, "ui", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                _get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                time.sleep(1)
        # What `orch ui` prints as the job's address: model-training mode, the trials.
        url = f"http://127.0.0.1:{port}/" + ui_path(exp_id)
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        chrome = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=2400,1800",
            "--virtual-time-budget=20000",
        ]
        subprocess.run(
            [*chrome, f"--screenshot={SHOT}", url], capture_output=True, timeout=180, check=False
        )
        compare = f"http://127.0.0.1:{port}/" + compare_path(
            exp_id, [r.info.run_id for r in children]
        )
        subprocess.run(
            [*chrome, f"--screenshot={COMPARE_SHOT}", compare],
            capture_output=True,
            timeout=180,
            check=False,
        )
        dom = subprocess.run(
            [*chrome, "--dump-dom", url], capture_output=True, text=True, timeout=180
        ).stdout
    finally:
        _stop(proc)
        log.close()
    assert SHOT.is_file() and SHOT.stat().st_size > 20_000, "no screenshot"
    assert COMPARE_SHOT.is_file() and COMPARE_SHOT.stat().st_size > 20_000
    # The runs page of a training experiment: the trials by name, no GenAI overview.
    assert "ui-compare" in dom
    assert "Token usage" not in dom
