"""orch as a cluster tool, on a real multi-node Ray cluster (ray.cluster_utils.Cluster) with
logical GPUs of two labelled types. The driver is the real `orch submit --address` CLI in
a subprocess, so nodes can be removed and the driver killed while it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from tests.conftest import ORCH, run_orch

pytestmark = pytest.mark.integration

LABEL = "orch/gpu-type"


@pytest.fixture
def cluster() -> Iterator[object]:
    """Head (CPU only) + a 2-GPU 'gtx-1080-ti' node + two 1-GPU 'a100' nodes."""
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.nodes_by_name = {  # type: ignore[attr-defined]
        "ti": c.add_node(num_cpus=2, num_gpus=2, labels={LABEL: "gtx-1080-ti"}),
        "a1": c.add_node(num_cpus=1, num_gpus=1, labels={LABEL: "a100"}),
        "a2": c.add_node(num_cpus=1, num_gpus=1, labels={LABEL: "a100"}),
    }
    c.wait_for_nodes()
    yield c
    ray.shutdown()
    c.shutdown()


def node_ids(cluster: object) -> dict[str, str]:
    return {name: n.node_id for name, n in cluster.nodes_by_name.items()}  # type: ignore[attr-defined]


def job_file(tmp_path: Path, trials: str, epochs: int = 3, name: str = "grid") -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(f"""
[job]
name = "{name}"
[defaults]
dataset = "digits"
data = {{ test_size = 100 }}
epochs = {epochs}
batch_size = 64
recipe = {{ lr = 0.05, augment = "none" }}
resources = {{ cpus = 1, gpus = 1 }}
{trials}
""")
    return p


def env_for(tmp_path: Path, cluster: object, **extra: str) -> dict[str, str]:
    return {
        "ORCH_HOME": str(tmp_path / ".orch"),
        "ORCH_RAY_ADDRESS": cluster.address,  # type: ignore[attr-defined]
        **extra,
    }


def ledger(tmp_path: Path) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / '.orch' / 'orch.db'}")


def mlflow_steps(tmp_path: Path, run_id: str) -> list[int]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / '.orch' / 'mlflow.db'}")
    return sorted(m.step for m in client.get_metric_history(run_id, "val_accuracy"))


def test_placement_by_type_and_refusal(cluster: object, tmp_path: Path) -> None:
    trials = """
[[trial]]
name = "on-ti"
model = "lenet5"
data = { train_size = 200, test_size = 100 }
resources = { gpu_type = "GTX 1080 Ti" }
[[trial]]
name = "on-a100"
model = "lenet5"
seed = 1
data = { train_size = 200, test_size = 100 }
resources = { gpu_type = ["A100"] }
[[trial]]
name = "two-gpus"
model = "lenet5"
seed = 2
data = { train_size = 200, test_size = 100 }
resources = { gpus = 2 }
"""
    env = env_for(tmp_path, cluster)
    proc = run_orch("submit", str(job_file(tmp_path, trials, epochs=1)), env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ids = node_ids(cluster)
    got = {t.name: t.node for t in ledger(tmp_path).job("grid").trials}  # type: ignore[union-attr]
    assert got["on-ti"] == ids["ti"]
    assert got["on-a100"] in (ids["a1"], ids["a2"])
    assert got["two-gpus"] == ids["ti"]  # the only node with 2 GPUs

    # An impossible job is refused before anything runs, naming trial and largest nodes.
    big = job_file(
        tmp_path,
        '[[trial]]\nname = "huge"\nmodel = "lenet5"\nresources = { gpus = 4, gpu_type = "A100" }',
        name="huge",
    )
    refused = run_orch("submit", str(big), env=env, cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert 'trial "huge" asks for 4 GPU (A100), 1 CPU: no node can hold it' in refused.stderr
    assert "a100: 1 GPU" in refused.stderr and "gtx-1080-ti: 2 GPU" in refused.stderr
    assert ledger(tmp_path).job("huge").trials[0].attempts == 0  # type: ignore[union-attr]


def wait_for(cond, timeout: float = 240.0, every: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := cond():
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def running_trial(tmp_path: Path, job: str, min_epochs: int):  # type: ignore[no-untyped-def]
    def check():  # type: ignore[no-untyped-def]
        try:
            view = ledger(tmp_path).job(job)
        except Exception:
            return None
        if view is None:
            return None
        for t in view.trials:
            if t.state == "RUNNING" and t.epochs_done >= min_epochs and t.node:
                return t
        return None

    return wait_for(check)


SLOW_TRIAL = """
[[trial]]
name = "survivor"
model = "resnet"
model_args = {{ depth = 8 }}
epochs = {epochs}
resources = {{ gpu_type = "A100" }}
"""


def test_node_lost_trial_resumes_elsewhere(cluster: object, tmp_path: Path) -> None:
    epochs = 6
    job = job_file(tmp_path, SLOW_TRIAL.format(epochs=epochs), epochs=epochs, name="lost")
    driver = subprocess.Popen(
        [ORCH, "submit", str(job)],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env_for(tmp_path, cluster), "ORCH_DASHBOARD": "0"},
    )
    try:
        t = running_trial(tmp_path, "lost", min_epochs=2)
        ids = node_ids(cluster)
        victim = next(n for n, i in ids.items() if i == t.node)
        assert victim in ("a1", "a2")
        cluster.remove_node(cluster.nodes_by_name[victim])  # type: ignore[attr-defined]
        out, _ = driver.communicate(timeout=600)
    finally:
        driver.kill()
    assert driver.returncode == 0, out[-4000:]
    view = ledger(tmp_path).job("lost")
    trial = view.trials[0]  # type: ignore[union-attr]
    assert trial.state == "FINISHED" and trial.epochs_done == epochs
    other = "a2" if victim == "a1" else "a1"
    assert trial.node == ids[other]
    attempts = ledger(tmp_path).attempts("lost", trial.key)
    assert len(attempts) == 2, attempts
    assert attempts[0]["failure_class"] == "node_lost", attempts[0]["message"]
    assert attempts[1]["start_epoch"] >= 2  # resumed from its checkpoint, not from scratch
    assert trial.counted_failures == 0  # a lost node does not use the retry budget
    assert mlflow_steps(tmp_path, trial.mlflow_run_id) == list(range(epochs))  # once each
    assert trial.lost_time_s > 0


def test_driver_killed_then_resubmitted(cluster: object, tmp_path: Path) -> None:
    epochs = 6
    job = job_file(tmp_path, SLOW_TRIAL.format(epochs=epochs), epochs=epochs, name="crash")
    env = {**os.environ, **env_for(tmp_path, cluster), "ORCH_DASHBOARD": "0"}
    driver = subprocess.Popen(
        [ORCH, "submit", str(job)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    t = running_trial(tmp_path, "crash", min_epochs=2)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    from orchestrator.training.checkpoint import CheckpointStore

    saved = CheckpointStore(tmp_path / ".orch" / "storage", t.key).epochs()[-1]
    again = run_orch("submit", str(job), env=env_for(tmp_path, cluster), cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    trial = ledger(tmp_path).job("crash").trials[0]  # type: ignore[union-attr]
    assert trial.state == "FINISHED" and trial.epochs_done == epochs
    attempts = ledger(tmp_path).attempts("crash", trial.key)
    assert attempts[0]["failure_class"] == "driver_lost"
    assert attempts[-1]["start_epoch"] >= saved >= 2  # nothing retrained before it
    assert mlflow_steps(tmp_path, trial.mlflow_run_id) == list(range(epochs))


def test_trial_that_became_infeasible_fails_after_bounded_wait(
    cluster: object, tmp_path: Path
) -> None:
    epochs = 6
    job = job_file(tmp_path, SLOW_TRIAL.format(epochs=epochs), epochs=epochs, name="gone")
    env = {
        **os.environ,
        **env_for(tmp_path, cluster),
        "ORCH_DASHBOARD": "0",
        "ORCH_INFEASIBLE_GRACE_S": "3",
    }
    driver = subprocess.Popen(
        [ORCH, "submit", str(job)],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        running_trial(tmp_path, "gone", min_epochs=1)
        for name in ("a1", "a2"):  # every A100 node goes away
            cluster.remove_node(cluster.nodes_by_name[name])  # type: ignore[attr-defined]
        out, _ = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 1, out[-3000:]
    trial = ledger(tmp_path).job("gone").trials[0]  # type: ignore[union-attr]
    assert trial.state == "FAILED" and "infeasible" in (trial.error or "")
    assert "no node left can hold 1 GPU (A100)" in trial.error  # type: ignore[operator]
    assert "did not finish" in out
