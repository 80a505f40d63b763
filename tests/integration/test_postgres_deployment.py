"""A shared deployment: ledger and MLflow on PostgreSQL (one fresh database each, dropped
afterwards), checkpoints on a shared path, several `orch submit` drivers at once — each
with its own embedded Ray, as on a login node of a cluster. Real CLI, real training."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ORCH, ROOT, pg_databases, run_orch

pytestmark = pytest.mark.integration

JOB = """
[job]
name = "{name}"

[defaults]
dataset = "digits"
data = {{ train_size = 200, test_size = 100 }}
epochs = 1
batch_size = 32
recipe = {{ lr = 0.05, augment = "none", preprocess = "meanstd" }}
resources = {{ cpus = 1 }}

[[trial]]
name = "LeNet-5"
model = "lenet5"
seed = {seed}
"""


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """(ledger URL, MLflow URI): two fresh databases. Two, not one: MLflow 3 has a `jobs`
    table of its own, so the ledger cannot live in MLflow's database."""
    with pg_databases("ledger", "mlflow") as (ledger, tracking):
        yield ledger, tracking


def _env(tmp_path: Path, ledger: str, tracking: str) -> dict[str, str]:
    return {
        **os.environ,
        "ORCH_HOME": str(tmp_path / ".orch"),
        "ORCH_LEDGER_URL": ledger,
        "ORCH_TRACKING_URI": tracking,
        "ORCH_STORAGE": str(tmp_path / "shared"),  # the NFS mount of a real cluster
        "ORCH_DASHBOARD": "0",
        "COLUMNS": "200",
    }


def _submit(job: Path, env: dict[str, str], tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ORCH, "submit", str(job)],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def _finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
        out.append((p.returncode, stdout, stderr))
    return out


def _write(tmp_path: Path, name: str, seed: int = 0) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(JOB.format(name=name, seed=seed))
    return path


def _check_once(ledger: str, tracking: str, job: str) -> None:
    """The job finished with exactly one MLflow run and one ledger row per trial key."""
    from mlflow.tracking import MlflowClient

    from orchestrator.ledger import Ledger

    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name(job)
    runs = client.search_runs([exp.experiment_id])
    trials = [r for r in runs if r.data.tags.get("orch.role") == "trial"]
    keys = [r.data.tags["orch.trial_key"] for r in trials]
    assert len(keys) == len(set(keys)) == 1, keys
    assert trials[0].info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(trials[0].info.run_id, "loss")] == [0]
    view = Ledger(ledger).job(job)
    assert view is not None and view.state == "FINISHED"
    assert [(t.key, t.state, t.epochs_done) for t in view.trials] == [(keys[0], "FINISHED", 1)]


def test_two_jobs_at_once_on_postgres(databases: tuple[str, str], tmp_path: Path) -> None:
    ledger, tracking = databases
    env = _env(tmp_path, ledger, tracking)
    # Different seeds: trial keys do not include the job, so two jobs with the same trial
    # would share its checkpoints in the shared storage (and the later one would only test).
    jobs = [_write(tmp_path, name, seed) for seed, name in enumerate(("pg-alpha", "pg-beta"))]
    results = _finish([_submit(job, env, tmp_path) for job in jobs])
    for (rc, stdout, stderr), name in zip(results, ("pg-alpha", "pg-beta"), strict=True):
        assert rc == 0, f"{name}:\n{stdout[-3000:]}\n{stderr[-3000:]}"
        assert f"job {name}: 1 trials, 0 already finished, 1 to run" in stdout
        assert re.search(r"LeNet-5 .*CPU", stdout), stdout[-3000:]  # its table printed
    for name in ("pg-alpha", "pg-beta"):
        _check_once(ledger, tracking, name)

    status = run_orch("status", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "job pg-alpha [FINISHED]" in status.stdout and "job pg-beta [FINISHED]" in status.stdout


def test_same_job_twice_at_once_runs_once(databases: tuple[str, str], tmp_path: Path) -> None:
    ledger, tracking = databases
    env = _env(tmp_path, ledger, tracking)
    job = _write(tmp_path, "pg-same")
    results = _finish([_submit(job, env, tmp_path), _submit(job, env, tmp_path)])
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 2], results
    (_, refused_out, refused_err) = next(r for r in results if r[0] == 2)
    # The lease decides: the loser sees the live driver, or lost the race for the lease.
    assert re.search(
        r"error: job 'pg-same' (is being run by \S+:\d+|was claimed by another driver just now)",
        refused_err,
    ), refused_err
    assert "Traceback" not in refused_err + refused_out
    _check_once(ledger, tracking, "pg-same")

    again = run_orch("submit", str(job), env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "1 already finished, 0 to run" in again.stdout
    _check_once(ledger, tracking, "pg-same")


def test_two_drivers_first_use_of_a_fresh_mlflow_database(pg_url: str) -> None:
    code = (
        "import sys; from orchestrator.tracking.mlflow_store import MlflowStore; "
        "MlflowStore(sys.argv[1]).experiment_id(sys.argv[2])"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, pg_url, name],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in ("first-use-a", "first-use-b")
    ]
    results = _finish(procs)
    assert [rc for rc, _, _ in results] == [0, 0], [err[-500:] for _, _, err in results]
