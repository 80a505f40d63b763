"""The MLflow UI as the place to compare a job's runs: the experiment opens in model-training
mode (mlflow.experimentKind), the job is a parent run with a readable child run per trial,
params are flat and named alike, the table is an artifact of the parent run. Then the
address `orch ui` prints is opened in headless Chromium on a fresh profile (no view a person
chose before, in localStorage), and what it laid out is read over the DevTools protocol:
the trials, their test accuracy, training time and params are columns inside the window.
Screenshots for people: tests/artifacts/mlflow_ui.png, mlflow_ui_compare.png."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ledger import Ledger
from orchestrator.protocol import EpochReport
from orchestrator.report.formats import to_csv, to_markdown
from orchestrator.report.table import build_table
from orchestrator.spec.load import parse_job
from orchestrator.tracking.mlflow_store import EXPERIMENT_KIND, MlflowStore
from orchestrator.tracking.recorder import Recorder
from orchestrator.tracking.runs import fetch_records
from orchestrator.tracking.ui_view import VIEW_TAG, compare_path, view_state
from tests.conftest import ORCH, ROOT, unavailable
from tests.integration.cdp import browser
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
            acc = round(0.5 + 0.1 * e + 0.05 * i, 4)  # 0.8, not 0.7999999 in the screenshot
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
    tags = c.get_experiment(exp_id).tags
    assert tags["mlflow.experimentKind"] == EXPERIMENT_KIND
    assert json.loads(tags[VIEW_TAG]) == view_state()  # written with the experiment
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
    log_path = tmp_path / "ui.log"
    log = log_path.open("w")
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
        # The address `orch ui` prints for the job: what a person opens.
        printed = [line for line in log_path.read_text().splitlines() if "Runs of" in line]
        assert printed and printed[0].startswith("Runs of ui-compare: http://"), printed
        url = printed[0].split(": ", 1)[1].strip()
        compare = f"http://127.0.0.1:{port}/" + compare_path(
            exp_id, [r.info.run_id for r in children]
        )
        seen = asyncio.run(_look(url, compare))
    finally:
        _stop(proc)
        log.close()
    assert SHOT.is_file() and SHOT.stat().st_size > 20_000, "no screenshot"
    assert COMPARE_SHOT.is_file() and COMPARE_SHOT.stat().st_size > 20_000
    columns = {c["id"]: c for c in seen["columns"]}
    # In a fresh browser: the trials, their test accuracy, training time and params are
    # columns of the runs table, laid out inside the window (not scrolled off, not hidden).
    for column in (
        "metrics.`test_accuracy`",
        "metrics.`train_time_s`",
        "params.`model`",
        "params.`lr`",
        "params.`epochs`",
    ):
        assert column in columns and columns[column]["shown"], (column, seen["columns"])
    runs = seen["runs"]
    assert sorted(runs) == ["lenet5", "nin", "resnet20"], runs  # the trials, not the job
    assert runs[0] == "nin", runs  # best test accuracy first
    # Model-training mode: the training side bar, no GenAI overview.
    assert "Model training" in seen["text"] and "Runs" in seen["text"]
    assert "Token usage" not in seen["text"] and "Latency" not in seen["text"]


# What the runs page laid out: each column header (its key, its box, whether it lies inside
# the window), the run names in table order, and the page's visible text.
_LAYOUT = """(() => {
  const W = window.innerWidth, H = window.innerHeight;
  const columns = [...document.querySelectorAll('[role="columnheader"][col-id]')].map(h => {
    const r = h.getBoundingClientRect(), s = getComputedStyle(h);
    return {id: h.getAttribute('col-id'), text: h.innerText.trim(),
            left: Math.round(r.left), right: Math.round(r.right),
            shown: r.width > 0 && r.left >= 0 && r.right <= W && r.top >= 0 && r.bottom <= H
                   && s.visibility !== 'hidden' && s.display !== 'none'};
  });
  const rows = [...document.querySelectorAll('[role="row"][row-index]')]
    .filter(r => r.querySelector('[col-id="attributes.`Run Name`"]'))
    .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);
  // not drawn yet: no metric column, or no run in the table
  if (!columns.some(c => c.id.startsWith('metrics.')) || !rows.length) return 'null';
  return JSON.stringify({
    columns,
    runs: rows.map(r => {  // the run's link: its name (the cell also holds a colour picker)
      const cell = r.querySelector('[col-id="attributes.`Run Name`"]');
      return (cell.querySelector('a') || cell).innerText.trim();
    }),
    text: document.body.innerText,
  });
})()"""


async def _look(url: str, compare: str) -> dict[str, Any]:
    """The runs page as a fresh browser lays it out, and screenshots of it and of the
    side-by-side comparison (for people: tests/artifacts/)."""
    assert CHROMIUM is not None
    SHOT.parent.mkdir(parents=True, exist_ok=True)
    async with browser(CHROMIUM, 1600, 1000) as page:  # a laptop's window
        await page.goto(url)
        seen = await page.wait_for(_LAYOUT, timeout=180)
        await page.screenshot(SHOT)
        assert seen, "the runs page drew no metric column or no run in 180 s"
        await page.goto(compare)
        # drawn once the parallel-coordinates plot (plotly) is there
        await page.wait_for("JSON.stringify(!!document.querySelector('.js-plotly-plot'))", 90)
        await page.screenshot(COMPARE_SHOT)
    return dict(seen)
