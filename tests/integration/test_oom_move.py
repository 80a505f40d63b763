"""A trial that runs out of GPU memory on one type is retried on an acceptable type with
more memory (issue 13 §3), on a real multi-node Ray cluster (ray.cluster_utils.Cluster) with
logical GPUs of two labelled types carrying memory sizes, driven by the real `orch submit`.

The trial prefers the small type, so its first attempt runs there, trains one epoch and
raises what TensorFlow raises on a GPU out of memory (faults_oom/sitecustomize.py, on that
type only); orch must move the retry to the larger type, where it resumes and finishes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ledger import Ledger
from orchestrator.protocol import Tag
from orchestrator.scheduling.policy.gputypes import LABEL, MEMORY_LABEL
from orchestrator.spec.load import load_job
from tests.conftest import run_orch

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAULTS = Path(__file__).parent / "faults_oom"

JOB = """
[job]
name = "oom-move"
[defaults]
model = "lenet5"
dataset = "digits"
data = { train_size = 200, test_size = 100 }
epochs = 2
batch_size = 64
recipe = { lr = 0.05, augment = "none" }

[[trial]]
name = "lenet"
resources = { gpus = 1, cpus = 1, gpu_type = ["T4", "A100"], max_retries = 2 }
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The trial processes are Ray workers of these nodes, started from this process's
    environment (not from the `orch submit` command's): the fault is set up here."""
    import ray
    from ray.cluster_utils import Cluster

    attempts = tmp_path_factory.mktemp("oom") / "attempts.log"
    fault = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(FAULTS), os.environ.get("PYTHONPATH")])),
        "ORCH_TEST_OOM_TYPE": "t4",
        "ORCH_TEST_ATTEMPTS": str(attempts),
    }
    saved = {k: os.environ.get(k) for k in fault}
    os.environ.update(fault)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        c.nodes_by_type = {  # type: ignore[attr-defined]
            "t4": c.add_node(num_cpus=1, num_gpus=1, labels={LABEL: "t4", MEMORY_LABEL: "16"}),
            "a100": c.add_node(num_cpus=1, num_gpus=1, labels={LABEL: "a100", MEMORY_LABEL: "80"}),
        }
        c.attempts = attempts  # type: ignore[attr-defined]
        c.wait_for_nodes()
        yield c
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def test_a_trial_out_of_memory_on_the_small_type_finishes_on_the_larger(
    cluster: Any,
    tmp_path: Path,
) -> None:
    from mlflow.tracking import MlflowClient

    job_file = tmp_path / "oom-move.toml"
    job_file.write_text(JOB)
    attempts_log = cluster.attempts
    env = {"ORCH_HOME": str(tmp_path / ".orch"), "ORCH_RAY_ADDRESS": cluster.address}
    done = run_orch("submit", str(job_file), env=env, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr

    # Where each attempt trained, as the trial process saw its node's label.
    (trial,) = load_job(job_file).trials
    assert attempts_log.read_text().split() == [trial.key, "t4", trial.key, "a100"]

    # The ledger: the first attempt ran on the t4 node and failed out of memory after its
    # first epoch; the retry ran on the a100 node, resumed from that epoch's checkpoint and
    # finished.
    nodes = {t: n.node_id for t, n in cluster.nodes_by_type.items()}
    ledger = Ledger(f"sqlite:///{tmp_path / '.orch' / 'orch.db'}")
    history = ledger.attempts("oom-move", trial.key)
    assert [(a["node"], a["start_epoch"], a["failure_class"], a["outcome"]) for a in history] == [
        (nodes["t4"], 0, "oom", "RETRYING"),
        (nodes["a100"], 1, None, "FINISHED"),
    ], history
    view = ledger.job("oom-move")
    assert view is not None and view.state == "FINISHED"
    (row,) = view.trials
    assert (row.state, row.epochs_done) == ("FINISHED", 2)

    # MLflow: one child run for the trial across both attempts, finished on the a100 node,
    # each epoch logged once (epoch 0 by the t4 attempt, epoch 1 by the a100 one).
    client = MlflowClient(f"sqlite:///{tmp_path / '.orch' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("oom-move")
    assert exp is not None
    (run,) = [
        r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get(Tag.ROLE) == "trial"
    ]
    assert run.info.status == "FINISHED"
    assert run.data.tags[Tag.NODE] == nodes["a100"]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1]
