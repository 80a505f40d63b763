"""`orch submit` contracts end to end, through the real CLI on the embedded local Ray and
the default stores (SQLite ledger and MLflow): --force reruns, the retry budget through
real Tune, and one live driver per job."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from tests.conftest import popen_orch, run_orch

pytestmark = pytest.mark.integration

FAULTS = Path(__file__).parent / "faults"  # sitecustomize.py: ORCH_TEST_RAISE

ONE = """
[job]
name = "{name}"

[defaults]
dataset = "digits"
data = {{ train_size = 200, test_size = 100 }}
epochs = {epochs}
batch_size = 32
recipe = {{ lr = 0.05, augment = "none", preprocess = "meanstd" }}
resources = {{ cpus = 1, max_retries = {retries} }}

[[trial]]
name = "LeNet-5"
model = "lenet5"
"""


def _job(tmp_path: Path, name: str, epochs: int = 2, retries: int = 2) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(ONE.format(name=name, epochs=epochs, retries=retries))
    return path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"ORCH_HOME": str(tmp_path / ".orch"), **extra}


def _ledger(tmp_path: Path) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / '.orch' / 'orch.db'}")


def _trial_runs(tmp_path: Path, job: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / '.orch' / 'mlflow.db'}")
    exp = client.get_experiment_by_name(job)
    runs = client.search_runs([exp.experiment_id])
    return [r for r in runs if r.data.tags.get("orch.role") == "trial"]


def test_force_reruns_a_finished_job(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    job, env = _job(tmp_path, "forced"), _env(tmp_path)
    first = run_orch("submit", str(job), env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    (old,) = _trial_runs(tmp_path, "forced")
    again = run_orch("submit", str(job), env=env, cwd=tmp_path)
    assert again.returncode == 0 and "1 already finished, 0 to run" in again.stdout, again.stdout

    forced = run_orch("submit", str(job), "--force", env=env, cwd=tmp_path)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "1 to run" in forced.stdout
    # One live run, a new one, trained from scratch: every epoch once, from step 0.
    (new,) = _trial_runs(tmp_path, "forced")
    assert new.info.run_id != old.info.run_id and new.info.status == "FINISHED"
    client = MlflowClient(f"sqlite:///{tmp_path / '.orch' / 'mlflow.db'}")
    assert [m.step for m in client.get_metric_history(new.info.run_id, "loss")] == [0, 1]
    assert client.get_run(old.info.run_id).info.lifecycle_stage == "deleted"
    view = _ledger(tmp_path).job("forced")
    assert view is not None and view.state == "FINISHED"
    (t,) = view.trials
    assert (t.state, t.epochs_done, t.mlflow_run_id) == ("FINISHED", 2, new.info.run_id)
    resumed = client.get_metric_history(new.info.run_id, "loss")
    assert resumed  # and not resumed from the old checkpoint:
    assert new.data.params.get("epochs") == "2"


def test_retry_budget_through_tune(tmp_path: Path) -> None:
    """A trial whose every attempt raises ResourceExhaustedError (what TensorFlow raises
    on a GPU out of memory) is retried by Tune until its budget is spent: FAILED after
    max_retries + 1 attempts, classed as out of memory."""
    retries = 2
    job = _job(tmp_path, "oom", retries=retries)
    attempts_log = tmp_path / "attempts.log"
    env = _env(
        tmp_path,
        PYTHONPATH=os.pathsep.join(filter(None, [str(FAULTS), os.environ.get("PYTHONPATH")])),
        ORCH_TEST_RAISE="ResourceExhaustedError",
        ORCH_TEST_ATTEMPTS=str(attempts_log),
    )
    done = run_orch("submit", str(job), env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 trial(s) did not finish" in done.stdout
    trained = attempts_log.read_text().splitlines()
    assert len(trained) == retries + 1, trained  # attempts that reached training
    view = _ledger(tmp_path).job("oom")
    assert view is not None and view.state == "FAILED"
    (t,) = view.trials
    assert (t.state, t.attempts, t.counted_failures) == ("FAILED", retries + 1, retries + 1), t
    assert "ResourceExhaustedError" in (t.error or ""), t.error
    history = _ledger(tmp_path).attempts("oom", t.key)
    failed = [a for a in history if a["failure_class"] == "oom"]
    assert len(failed) == retries + 1, history
    (run,) = _trial_runs(tmp_path, "oom")
    assert run.info.status == "FAILED" and run.data.tags["orch.failure_class"] == "oom"


def test_two_submits_of_one_job_at_once(tmp_path: Path) -> None:
    """SQLite, the default store: one driver runs the job, the other is refused with the
    lease message (exit 2) instead of training every trial a second time."""
    job, env = _job(tmp_path, "twice", epochs=3), _env(tmp_path)
    procs = []
    for _ in range(2):
        procs.append(popen_orch("submit", str(job), env=env))
        time.sleep(0.2)
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], [
        (p.returncode, o[0][-2000:], o[1][-2000:]) for p, o in zip(procs, outs, strict=True)
    ]
    refused = next(o for p, o in zip(procs, outs, strict=True) if p.returncode == 2)
    assert "job 'twice' is being run by" in refused[1] or "claimed by another driver" in refused[1]
    assert "Traceback" not in refused[1]
    (run,) = _trial_runs(tmp_path, "twice")  # one run, each epoch once
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / '.orch' / 'mlflow.db'}")
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2]
    view = _ledger(tmp_path).job("twice")
    assert view is not None and view.state == "FINISHED" and view.trials[0].attempts == 1
