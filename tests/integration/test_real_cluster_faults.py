"""Hard faults on the real multi-node cluster (tests/integration/real_cluster.py): a worker
node SIGKILLed with its whole process group, the driver SIGKILLed (then `orch submit`
again, or `orch resume`), the whole cluster lost, and a trial's worker process SIGKILLed
as the kernel's OOM killer does. Every driver is the real `orch` CLI in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from tests.conftest import ROOT
from tests.integration.real_cluster import GPU_TYPES, RealCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EPOCHS = 5
# One trial that either GPU worker can hold (1 GPU, any type), slow enough per epoch
# (a small ResNet on ~900 digits) to be caught mid-trial on a loaded two-core machine.
JOB = """
[job]
name = "{name}"
[defaults]
dataset = "digits"
data = {{ train_size = 900, test_size = 100 }}
epochs = {epochs}
batch_size = 64
seed = {seed}
recipe = {{ lr = 0.05, augment = "none" }}
resources = {{ cpus = 1, gpus = 1, max_retries = {retries} }}
[[trial]]
name = "survivor"
model = "resnet"
model_args = {{ depth = 8 }}
"""
RUNNER = ROOT / "tests" / "integration" / "trial_runner.py"
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def write_job(tmp_path: Path, name: str, retries: int = 2) -> Path:
    # A seed of its own per test: the trial's content key, hence its checkpoints in the
    # cluster's shared storage, must not be another test's (it would start finished).
    p = tmp_path / f"{name}.toml"
    p.write_text(
        JOB.format(
            name=name, epochs=EPOCHS, retries=retries, seed=zlib.crc32(name.encode()) % 10_000
        )
    )
    return p


def ledger(home: Path) -> Ledger:
    return Ledger(f"sqlite:///{home / 'orch.db'}")


def wait_for(cond, timeout: float = 300.0, every: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := cond():
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def running(home: Path, job: str, min_epochs: int, driver: subprocess.Popen[str]):  # type: ignore[no-untyped-def]
    """The job's trial once it runs with at least `min_epochs` epochs done."""

    def check():  # type: ignore[no-untyped-def]
        if driver.poll() is not None:
            raise AssertionError(f"the driver exited early:\n{driver.communicate()[0][-3000:]}")
        try:
            view = ledger(home).job(job)
        except Exception:  # the driver may be creating the database
            return None
        for t in view.trials if view else ():
            if t.state == "RUNNING" and t.epochs_done >= min_epochs and t.node:
                return t
        return None

    return wait_for(check)


def finish(driver: subprocess.Popen[str], timeout: float = 600) -> str:
    try:
        out, _ = driver.communicate(timeout=timeout)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    return out


def submit_bg(cluster: RealCluster, job: Path, home: Path) -> subprocess.Popen[str]:
    return cluster.popen_orch("submit", str(job), "--address", cluster.address, home=home)


def kill_driver(driver: subprocess.Popen[str]) -> None:
    os.killpg(driver.pid, signal.SIGKILL)
    driver.communicate(timeout=60)


def steps(home: Path, run_id: str, metric: str = "val_accuracy") -> list[int]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    return sorted(m.step for m in client.get_metric_history(run_id, metric))


def final_metrics(home: Path, run_id: str) -> dict[str, float]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    out = {}
    for k in METRICS:
        hist = client.get_metric_history(run_id, k)
        out[k] = max(hist, key=lambda m: m.step).value
    return out


def trial_runs(home: Path, job: str) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = client.get_experiment_by_name(job)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], "tags.`orch.role` = 'trial'")
    return len(runs)


def saved_epoch(cluster: RealCluster, key: str) -> int:
    from orchestrator.training.checkpoint import CheckpointStore

    return CheckpointStore(cluster.storage, key).epochs()[-1]


def node_name(cluster: RealCluster, node_id: str) -> str:
    by_id = {v: k for k, v in cluster.node_ids().items()}
    return next(n for n, t in GPU_TYPES.items() if t == by_id[node_id])


def reference_run(job_file: Path, tmp_path: Path) -> dict[str, float]:
    """The same trial uninterrupted, in one process without Ray (resume is exact:
    test_training_loop.test_resume_is_exact)."""
    import json

    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(job_file), str(tmp_path / "ref-storage")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT), "ORCH_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [json.loads(ln[7:]) for ln in proc.stdout.splitlines() if ln.startswith("REPORT ")]
    return {k: float(reports[-1][k]) for k in METRICS}


def test_worker_node_killed_mid_trial(real_cluster: RealCluster, tmp_path: Path) -> None:
    real_cluster.heal()
    home = tmp_path / ".orch"
    job = write_job(tmp_path, "nodekill")
    driver = real_cluster.popen_orch(
        "submit", str(job), "--address", real_cluster.address, home=home
    )
    try:
        t = running(home, "nodekill", min_epochs=1, driver=driver)
        victim = node_name(real_cluster, t.node)
        assert victim in ("ti", "v100")
        at_kill = saved_epoch(real_cluster, t.key)
        real_cluster.kill(victim)  # SIGKILL to its process group: raylet, workers, all
        out = finish(driver)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        real_cluster.heal()
    assert driver.returncode == 0, out[-4000:]
    trial = ledger(home).job("nodekill").trials[0]  # type: ignore[union-attr]
    assert trial.state == "FINISHED" and trial.epochs_done == EPOCHS
    other = "v100" if victim == "ti" else "ti"
    assert node_name(real_cluster, trial.node) == other  # type: ignore[arg-type]
    attempts = ledger(home).attempts("nodekill", trial.key)
    assert attempts[0]["failure_class"] == "node_lost", attempts
    assert attempts[-1]["start_epoch"] >= at_kill >= 1  # from its checkpoint
    assert trial.counted_failures == 0  # a lost node does not use the retry budget
    assert steps(home, trial.mlflow_run_id) == list(range(EPOCHS))  # each epoch once
    got = final_metrics(home, trial.mlflow_run_id)  # type: ignore[arg-type]
    want = reference_run(job, tmp_path)
    for k in METRICS:
        assert got[k] == pytest.approx(want[k], abs=1e-4), (k, got, want)


@pytest.mark.parametrize("again", ["submit", "resume"])
def test_driver_killed_then_continued(
    real_cluster: RealCluster,
    tmp_path: Path,
    again: str,
) -> None:
    real_cluster.heal()
    home = tmp_path / ".orch"
    name = f"driver-{again}"
    job = write_job(tmp_path, name)
    driver = real_cluster.popen_orch(
        "submit", str(job), "--address", real_cluster.address, home=home
    )
    t = running(home, name, min_epochs=2, driver=driver)
    kill_driver(driver)
    saved = saved_epoch(real_cluster, t.key)
    args = ("submit", str(job)) if again == "submit" else ("resume", name)
    done = real_cluster.orch(*args, "--address", real_cluster.address, home=home)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    trial = ledger(home).job(name).trials[0]  # type: ignore[union-attr]
    assert trial.state == "FINISHED" and trial.epochs_done == EPOCHS
    attempts = ledger(home).attempts(name, trial.key)
    assert attempts[0]["failure_class"] == "driver_lost", attempts
    assert attempts[-1]["start_epoch"] >= saved >= 2  # nothing retrained before it
    assert trial_runs(home, name) == 1
    assert steps(home, trial.mlflow_run_id) == list(range(EPOCHS))  # type: ignore[arg-type]


def test_whole_cluster_lost_then_resumed(real_cluster: RealCluster, tmp_path: Path) -> None:
    real_cluster.heal()
    home = tmp_path / ".orch"
    job = write_job(tmp_path, "blackout")
    driver = real_cluster.popen_orch(
        "submit", str(job), "--address", real_cluster.address, home=home
    )
    t = running(home, "blackout", min_epochs=1, driver=driver)
    for name in ("head", "ti", "v100"):  # power cut: every node at once, the driver too
        real_cluster.kill(name)
    kill_driver(driver)
    saved = saved_epoch(real_cluster, t.key)
    real_cluster.heal()  # started again with the scripts, same port and token
    done = real_cluster.orch("resume", "blackout", "--address", real_cluster.address, home=home)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    trial = ledger(home).job("blackout").trials[0]  # type: ignore[union-attr]
    assert trial.state == "FINISHED" and trial.epochs_done == EPOCHS
    attempts = ledger(home).attempts("blackout", trial.key)
    assert attempts[-1]["start_epoch"] >= saved >= 1
    assert steps(home, trial.mlflow_run_id) == list(range(EPOCHS))  # type: ignore[arg-type]


def test_trial_process_killed_like_the_oom_killer(
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    """README: failures are classified; a lost node does not use up max_retries, anything
    else does. A trial process killed by SIGKILL (what the kernel's OOM killer does) on a
    live node is classed oom and counts against the budget: with max_retries = 1 the trial
    still finishes after one such kill, from its checkpoint."""
    real_cluster.heal()
    home = tmp_path / ".orch"
    job = write_job(tmp_path, "oomkill", retries=1)
    driver = real_cluster.popen_orch(
        "submit", str(job), "--address", real_cluster.address, home=home
    )
    try:
        t = running(home, "oomkill", min_epochs=1, driver=driver)
        victim = node_name(real_cluster, t.node)
        pids = wait_for(lambda: real_cluster.trial_pids(victim), timeout=60)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        out = finish(driver)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, out[-4000:]
    trial = ledger(home).job("oomkill").trials[0]  # type: ignore[union-attr]
    assert trial.state == "FINISHED" and trial.epochs_done == EPOCHS
    attempts = ledger(home).attempts("oomkill", trial.key)
    assert [a["failure_class"] for a in attempts[:-1]] == ["oom"], attempts
    assert trial.counted_failures == 1
    assert attempts[-1]["start_epoch"] >= 1
    assert steps(home, trial.mlflow_run_id) == list(range(EPOCHS))  # type: ignore[arg-type]
