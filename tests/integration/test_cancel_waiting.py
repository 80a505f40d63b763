"""`orch cancel` of a job whose trials mostly wait: the waiting ones end in the driver,
unstarted (scheduling/adapters/withdraw.py), instead of each taking the CPU (or GPU) it
waits for and a process just to read its stop request and end.

Through the real CLI on the embedded local Ray (2 CPUs here, so at most 2 of the 12
one-CPU trials run at once), the SQLite ledger and MLflow. Before the withdrawal, every
trial of a cancelled job started a process: 12 attempts here, and on a GPU grid one
GPU-slot at a time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from tests.conftest import popen_orch, run_orch

pytestmark = pytest.mark.integration

TRIALS = 12

JOB = """
[job]
name = "waiting"

[defaults]
model = "lenet5"
dataset = "digits"
data = {{ train_size = 200, test_size = 100 }}
epochs = 200
batch_size = 32
seeds = {seeds}
resources = {{ cpus = 1 }}

[[trial]]
name = "LeNet-5"
"""


def test_cancel_ends_waiting_trials_without_starting_them(tmp_path: Path) -> None:
    job = tmp_path / "waiting.toml"
    job.write_text(JOB.format(seeds=list(range(TRIALS))))
    env = {"ORCH_HOME": str(tmp_path / ".orch")}
    driver = popen_orch("submit", str(job), env=env)
    try:
        ledger: Ledger | None = None
        deadline = time.monotonic() + 300
        view = None
        while time.monotonic() < deadline and driver.poll() is None:
            ledger = ledger or _ledger(tmp_path)
            view = ledger.job("waiting") if ledger is not None else None
            if view is not None and any(t.epochs_done >= 1 for t in view.trials):
                break
            time.sleep(0.5)
        assert view is not None and any(t.epochs_done >= 1 for t in view.trials), (
            driver.poll(),
            driver.stderr.read() if driver.poll() is not None else "",  # type: ignore[union-attr]
        )
        cancelled_at = time.monotonic()
        cancel = run_orch("cancel", "waiting", env=env, cwd=tmp_path)
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        out, err = driver.communicate(timeout=180)
        took = time.monotonic() - cancelled_at
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, 9)
            driver.wait()
    assert "Traceback" not in err, err[-3000:]
    assert f"job cancelled: {TRIALS} trial(s) did not finish" in out, out[-3000:]
    assert ledger is not None
    view = ledger.job("waiting")
    assert view is not None and view.state == "CANCELLED", (view, out[-2000:], err[-2000:])
    assert [t.state for t in view.trials] == ["CANCELLED"] * TRIALS
    # Only what was running (or had its CPU already) started a process: 2 CPUs.
    started = sum(t.attempts for t in view.trials)
    assert 1 <= started <= 3, [(t.name, t.attempts) for t in view.trials]
    unstarted = [t for t in view.trials if t.attempts == 0]
    assert all("cancelled by" in (t.error or "") for t in unstarted), unstarted
    assert took < 120, took
    # MLflow agrees: every trial's run ended KILLED, tagged with the reason.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / '.orch' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("waiting")
    runs = client.search_runs([exp.experiment_id])
    runs = [r for r in runs if r.data.tags.get("orch.role") == "trial"]
    assert len(runs) == TRIALS
    assert {r.info.status for r in runs} == {"KILLED"}
    assert {r.data.tags.get("orch.state") for r in runs} == {"CANCELLED"}
    assert all("cancelled by" in r.data.tags.get("orch.error", "") for r in runs)


def _ledger(tmp_path: Path) -> Ledger | None:
    """The driver's ledger once it exists (opening it earlier would create it)."""
    if not (tmp_path / ".orch" / "orch.db").exists():
        return None
    return Ledger(f"sqlite:///{tmp_path / '.orch' / 'orch.db'}", create=False)
