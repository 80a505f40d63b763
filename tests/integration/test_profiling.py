"""Profiling before planning (scheduling/policy/profile.py), run by the real `orch submit` on a
real Ray cluster (ray.cluster_utils.Cluster) with one logical GPU: three trials wait for it
in turn, so orch first trains each for 2 epochs and stops it, holds the measured ones back
from Tune's queue until all three are measured, then runs the rest longest measured time
left first, each resuming from its checkpoint.

The launch order comes from the cost model, which prices the logical GPU as a T4: there
LeNet-5 at batch 4 (many small steps) looks longest and ResNet-20 at batch 200 shortest.
On this machine's CPU, where the trials really run, ResNet-20 is by far the longest: the
plan must start it first, although it was launched last."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ledger import Ledger
from orchestrator.protocol import FailureClass, Tag
from orchestrator.scheduling.policy.gputypes import LABEL
from orchestrator.scheduling.policy.profile import EPOCHS
from orchestrator.spec.load import load_job
from tests.conftest import run_orch

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL = 6
JOB = f"""
[job]
name = "profiled"
[defaults]
dataset = "digits"
data = {{ train_size = 400, test_size = 50 }}
epochs = {TOTAL}
recipe = {{ lr = 0.01, augment = "none" }}
resources = {{ gpus = 1, cpus = 1, max_retries = 0 }}

[[trial]]
name = "lenet-b4"
model = "lenet5"
batch_size = 4

[[trial]]
name = "lenet-b8"
model = "lenet5"
batch_size = 8

[[trial]]
name = "resnet20-b200"
model = "resnet20"
batch_size = 200
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        c.gpu_node = c.add_node(  # type: ignore[attr-defined]
            num_cpus=1, num_gpus=1, labels={LABEL: "t4"}
        )
        c.wait_for_nodes()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def test_trials_are_measured_then_run_longest_measured_first(cluster: Any, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    job_file = tmp_path / "profiled.toml"
    job_file.write_text(JOB)
    trials = {t.name: t for t in load_job(job_file).trials}
    home = tmp_path / ".orch"
    env = {
        "ORCH_HOME": str(home),
        "ORCH_RAY_ADDRESS": cluster.address,
        # epochs of a second here, not minutes: the round is 2 of 6 epochs (a third of
        # the job), and a restart costs next to nothing
        "ORCH_PROFILE_MAX_SHARE": "0.9",
        "ORCH_MIGRATE_RESTART_S": "0.001",
    }
    done = run_orch("submit", str(job_file), env=env, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr

    ledger = Ledger(f"sqlite:///{home / 'orch.db'}")
    history = {name: ledger.attempts("profiled", t.key) for name, t in trials.items()}
    # Each trial: a profiling attempt of 2 epochs, stopped (migrated: not a failure, no
    # retry used), then one that resumed at epoch 2 and finished.
    for name, attempts in history.items():
        shape = [(a["start_epoch"], a["failure_class"], a["outcome"]) for a in attempts]
        assert shape == [(0, FailureClass.MIGRATED, "RETRYING"), (EPOCHS, None, "FINISHED")], (
            name,
            attempts,
        )
        assert "profiling" in str(attempts[0]["message"]), attempts
    # The plan waited for every measurement: no second attempt began before the last
    # profiling attempt ended.
    first_ended = max(a[0]["ended_at"] for a in history.values())
    assert all(a[1]["started_at"] >= first_ended for a in history.values()), history
    # The round ran in launch order (the cost model's: ResNet-20 last); the plan ran
    # ResNet-20, the longest measured, first.
    launch = sorted(history, key=lambda n: history[n][0]["started_at"])
    planned = sorted(history, key=lambda n: history[n][1]["started_at"])
    assert launch[-1] == "resnet20-b200", launch
    assert planned[0] == "resnet20-b200", planned

    view = ledger.job("profiled")
    assert view is not None and view.state == "FINISHED"
    assert all((r.state, r.epochs_done, r.counted_failures) == ("FINISHED", TOTAL, 0)
               for r in view.trials)  # fmt: skip

    # MLflow: one run per trial across both attempts, each epoch logged once.
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = client.get_experiment_by_name("profiled")
    assert exp is not None
    runs = [
        r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get(Tag.ROLE) == "trial"
    ]
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        assert steps == list(range(TOTAL)), (run.data.tags, steps)
