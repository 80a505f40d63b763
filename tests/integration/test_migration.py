"""A running trial moves to a faster GPU that freed up (scheduling/policy/migrate.py, applied
by the Tune callback in scheduling/adapters/placement.py), on a real multi-node Ray cluster
(ray.cluster_utils.Cluster) with logical GPUs of two labelled types, driven by the real
`orch submit`.

The fast type (a100) is busy with another job's work when the trial starts, so it starts on
the slow type (t4). Once it has trained an epoch there, that work ends and the a100 frees:
orch asks the trial to stop after its next checkpoint, runs it again bound to the a100, and
it resumes from that checkpoint and finishes. The move is not a failure: the ledger records
the attempt as `migrated`, not counted against max_retries = 0."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ledger import Ledger
from orchestrator.protocol import FailureClass, Tag
from orchestrator.scheduling.policy.gputypes import LABEL
from orchestrator.spec.load import load_job
from tests.conftest import run_orch

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EPOCHS = 8
JOB = f"""
[job]
name = "move"
[defaults]
model = "nin"
dataset = "digits"
data = {{ train_size = 800, test_size = 100 }}
epochs = {EPOCHS}
batch_size = 64
recipe = {{ lr = 0.01, augment = "none" }}

[[trial]]
name = "long"
# no retries at all: a move must not use one up
resources = {{ gpus = 1, cpus = 1, gpu_type = ["A100", "T4"], max_retries = 0 }}
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        c.nodes_by_type = {  # type: ignore[attr-defined]
            "t4": c.add_node(num_cpus=1, num_gpus=1, labels={LABEL: "t4"}),
            # `busy`: lets this test hold the a100 with a plain actor (another job's work)
            "a100": c.add_node(
                num_cpus=1, num_gpus=1, labels={LABEL: "a100"}, resources={"busy": 1}
            ),
        }
        c.wait_for_nodes()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def move_env(home: Path, address: str) -> dict[str, str]:
    """`orch submit`'s environment on the cluster: its workspace, and migration rules for
    epochs of seconds here, not hours (any gain is worth a move)."""
    return {
        "ORCH_HOME": str(home),
        "ORCH_RAY_ADDRESS": address,
        "ORCH_MIGRATE_RESTART_S": "0.001",
        "ORCH_MIGRATE_MIN_GAIN_S": "0.001",
        "ORCH_MIGRATE_MIN_SHARE": "0.001",
    }


def hold_the_a100(cluster: Any) -> Any:
    """Another job's work on the a100: a plain actor holding its GPU (the node's `busy`
    resource); returned once it holds it."""
    import ray

    ray.init(address=cluster.address, ignore_reinit_error=True)

    @ray.remote(num_cpus=0, num_gpus=1, resources={"busy": 1})
    class Holder:
        def ping(self) -> str:
            return "held"

    holder = Holder.remote()  # type: ignore[attr-defined]
    assert ray.get(holder.ping.remote(), timeout=120) == "held"
    return holder


def wait_for_an_epoch(home: Path, submit: Future[Any]) -> None:
    """Until the job's trial has trained an epoch (the ledger says so)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not submit.done():
        view = Ledger(f"sqlite:///{home / 'orch.db'}").job("move") if home.exists() else None
        if view is not None and view.trials and view.trials[0].epochs_done >= 1:
            return
        time.sleep(0.5)
    pytest.fail("the trial trained no epoch: " + repr(submit.done() and submit.result()))


def test_a_trial_moves_to_the_fast_type_when_it_frees_and_resumes_there(
    cluster: Any, tmp_path: Path
) -> None:
    import ray
    from mlflow.tracking import MlflowClient

    holder = hold_the_a100(cluster)

    job_file = tmp_path / "move.toml"
    job_file.write_text(JOB)
    (trial,) = load_job(job_file).trials
    home = tmp_path / ".orch"
    env = move_env(home, cluster.address)
    with ThreadPoolExecutor(1) as pool:
        submit = pool.submit(run_orch, "submit", str(job_file), env=env, timeout=900)
        # The trial starts on the t4 (the a100 is held); after its first epoch there, the
        # a100 frees.
        wait_for_an_epoch(home, submit)
        ray.kill(holder)
        done = submit.result()
    assert done.returncode == 0, done.stdout + done.stderr

    # The ledger: the first attempt ran on the t4 node and ended as a move (not counted);
    # the second ran on the a100 node from the checkpoint the first left, and finished.
    nodes = {t: n.node_id for t, n in cluster.nodes_by_type.items()}
    ledger = Ledger(f"sqlite:///{home / 'orch.db'}")
    history = ledger.attempts("move", trial.key)
    assert [(a["node"], a["failure_class"], a["outcome"]) for a in history] == [
        (nodes["t4"], FailureClass.MIGRATED, "RETRYING"),
        (nodes["a100"], None, "FINISHED"),
    ], history
    moved_at = history[1]["start_epoch"]
    assert isinstance(moved_at, int) and 1 <= moved_at < EPOCHS, history
    view = ledger.job("move")
    assert view is not None and view.state == "FINISHED"
    (row,) = view.trials
    assert (row.state, row.epochs_done, row.counted_failures) == ("FINISHED", EPOCHS, 0)

    # MLflow: one run for the trial across both attempts, finished on the a100 node; the
    # epoch count continues across the move, each epoch logged once.
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = client.get_experiment_by_name("move")
    assert exp is not None
    (run,) = [
        r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get(Tag.ROLE) == "trial"
    ]
    assert run.info.status == "FINISHED"
    assert run.data.tags[Tag.NODE] == nodes["a100"]
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
    assert steps == list(range(EPOCHS)), steps


def test_a_moved_trial_whose_fast_gpu_other_work_took_runs_on(cluster: Any, tmp_path: Path) -> None:
    """The a100 frees and orch asks the trial to move there; while the trial finishes its
    epoch on the t4, other work takes the a100 back. When Tune runs the trial again, orch
    binds it where there is room (move_fallback, in on_trial_recover): it resumes on the t4
    and finishes while the a100 stays held, instead of waiting for the a100. (Taken after
    the trial was queued again, the same rebinding happens in on_step_end, which Requeue
    makes Tune honour: tests/integration/test_requeue.py.)"""
    import ray

    from orchestrator.scheduling.adapters.control import Control

    holder = hold_the_a100(cluster)
    # longer epochs than above: the new holder must take the a100 within one
    job_file = tmp_path / "move.toml"
    job_file.write_text(JOB.replace("train_size = 800", "train_size = 1400"))
    (trial,) = load_job(job_file).trials
    home = tmp_path / ".orch"
    control = Control(home / "storage")
    with ThreadPoolExecutor(1) as pool:
        submit = pool.submit(
            run_orch, "submit", str(job_file), env=move_env(home, cluster.address), timeout=600
        )
        wait_for_an_epoch(home, submit)
        ray.kill(holder)  # the a100 frees: orch asks the trial to move
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and control.stop_request(trial.key) is None:
            assert not submit.done(), submit.result()
            time.sleep(0.1)
        # other work takes the a100 while the trial finishes its epoch on the t4
        holder = hold_the_a100(cluster)
        done = submit.result()
    assert done.returncode == 0, done.stdout + done.stderr
    assert ray.get(holder.ping.remote(), timeout=10) == "held"  # held all along
    ray.kill(holder)

    nodes = {t: n.node_id for t, n in cluster.nodes_by_type.items()}
    history = Ledger(f"sqlite:///{home / 'orch.db'}").attempts("move", trial.key)
    assert [(a["node"], a["failure_class"], a["outcome"]) for a in history] == [
        (nodes["t4"], FailureClass.MIGRATED, "RETRYING"),
        (nodes["t4"], None, "FINISHED"),
    ], history
    resumed_at = history[1]["start_epoch"]
    assert isinstance(resumed_at, int) and 1 <= resumed_at < EPOCHS, history  # not restarted
