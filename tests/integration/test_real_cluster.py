"""orch on a multi-node cluster of real Ray processes started by the project's scripts
(tests/integration/real_cluster.py), driven through the CLI exactly as a user types it:
`orch cluster check --address`, `orch submit --address HOST:PORT`, `orch status`. The
user's shell has only RAY_AUTH_TOKEN_PATH; orch turns token authentication on itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from tests.integration.real_cluster import GPU_TYPES, RealCluster

pytestmark = pytest.mark.integration

PLACEMENT_JOB = """
[job]
name = "place"
[defaults]
dataset = "digits"
data = { train_size = 200, test_size = 100 }
epochs = 2
batch_size = 64
recipe = { lr = 0.05, augment = "none" }
resources = { cpus = 1, gpus = 1 }
[[trial]]
name = "on-ti"
model = "lenet5"
resources = { gpu_type = "GTX 1080 Ti" }
[[trial]]
name = "on-v100"
model = "lenet5"
seed = 1
resources = { gpu_type = ["Tesla V100-SXM2-16GB"] }
[[trial]]
name = "two-gpus"
model = "lenet5"
seed = 2
resources = { gpus = 2 }
"""


def ledger(home: Path) -> Ledger:
    return Ledger(f"sqlite:///{home / 'orch.db'}")


def mlflow_client(home: Path):  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{home / 'mlflow.db'}")


def test_check_submit_status_with_gpu_types(real_cluster: RealCluster, tmp_path: Path) -> None:
    real_cluster.heal()
    home = tmp_path / ".orch"
    check = real_cluster.orch("cluster", "check", "--address", real_cluster.address, home=home)
    out = check.stdout + check.stderr
    assert check.returncode == 0, out
    assert f"Ray cluster at {real_cluster.address}: 3 node(s), 3 GPU(s), 3 CPU(s)" in out
    assert "gtx-1080-ti" in out and "v100-sxm2-16gb" in out
    assert "shared: all 3 node(s) read the driver's probe file" in out

    job = tmp_path / "place.toml"
    job.write_text(PLACEMENT_JOB)
    sub = real_cluster.orch("submit", str(job), "--address", real_cluster.address, home=home)
    assert sub.returncode == 0, sub.stdout[-4000:] + sub.stderr[-4000:]
    assert "Traceback" not in sub.stderr and "InvalidAuthToken" not in sub.stderr

    status = real_cluster.orch("status", "place", home=home)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("FINISHED") >= 3, status.stdout

    # Placement, from the MLflow runs: each trial ran on a node of the type it asked for.
    by_type = real_cluster.node_ids()
    view = ledger(home).job("place")
    assert view is not None
    client = mlflow_client(home)
    placed = {}
    for t in view.trials:
        assert t.state == "FINISHED" and t.epochs_done == 2, t
        tags = client.get_run(t.mlflow_run_id).data.tags
        assert tags["orch.trial_key"] == t.key
        placed[t.name] = tags["orch.node"]
        assert t.node == tags["orch.node"]
    assert placed["on-ti"] == by_type[GPU_TYPES["ti"]]
    assert placed["on-v100"] == by_type[GPU_TYPES["v100"]]
    assert placed["two-gpus"] == by_type[GPU_TYPES["ti"]]  # the only node with 2 GPUs


RAY_JOBS_JOB = """
[job]
name = "remote"
[defaults]
dataset = "digits"
data = { train_size = 200, test_size = 100 }
epochs = 1
batch_size = 64
recipe = { lr = 0.05, augment = "none" }
resources = { cpus = 1 }
[[trial]]
name = "t"
model = "lenet5"
"""


def test_submit_as_ray_job_with_the_token(real_cluster: RealCluster, tmp_path: Path) -> None:
    """`orch submit --address http://HEAD:8265`: the Jobs API of a token cluster, with the
    token file only (no RAY_AUTH_MODE); the driver runs on the head as a Ray Job."""
    import sys
    import time

    real_cluster.heal()
    home = tmp_path / ".orch"
    (tmp_path / "remote.toml").write_text(RAY_JOBS_JOB)
    url = f"http://127.0.0.1:{real_cluster.dashboard_port}"
    stores = {  # the driver runs on the head: it gets these (ORCH_HOME is not forwarded)
        "ORCH_LEDGER_URL": f"sqlite:///{home / 'orch.db'}",
        "ORCH_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
    }
    sub = real_cluster.orch(
        "submit",
        "remote.toml",
        "--address",
        url,
        "--no-pip",
        "--python",
        sys.executable,
        home=home,
        timeout=120,
        **stores,
    )
    assert sub.returncode == 0, sub.stdout[-3000:] + sub.stderr[-3000:]
    assert "submitted as Ray job orch-remote-" in sub.stdout, sub.stdout
    deadline = time.monotonic() + 600
    view = None
    while time.monotonic() < deadline:
        view = ledger(home).job("remote") if (home / "orch.db").exists() else None
        if view is not None and view.state in ("FINISHED", "FAILED"):
            break
        time.sleep(2)
    assert view is not None and view.state == "FINISHED", view
    assert view.trials[0].state == "FINISHED" and view.trials[0].epochs_done == 1
    status = real_cluster.orch("status", "remote", home=home, **stores)
    assert status.returncode == 0 and f"Ray job {view.ray_job_id}" in status.stdout, status
