"""Packing and GPU-type preference on a real multi-node Ray cluster (ray.cluster_utils.Cluster
with logical GPUs of labelled types), driven by the real `orch submit` CLI:
four trials at gpus = 0.25 share one GPU at the same time (issue 13 §4), and a trial binds
to the most preferred acceptable type with a free GPU (§5)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from orchestrator.scheduling.policy.gputypes import LABEL, MEMORY_LABEL
from orchestrator.spec.load import load_job
from tests.conftest import run_orch

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        c.nodes_by_type = {  # type: ignore[attr-defined]
            "t4": c.add_node(num_cpus=4, num_gpus=1, labels={LABEL: "t4", MEMORY_LABEL: "16"}),
            "a100": c.add_node(num_cpus=1, num_gpus=1, labels={LABEL: "a100"}),
            "v100": c.add_node(num_cpus=1, num_gpus=1, labels={LABEL: "v100"}),
        }
        c.wait_for_nodes()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def write_job(tmp_path: Path, name: str, trials: str, epochs: int = 2) -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(f"""
[job]
name = "{name}"
[defaults]
model = "lenet5"
dataset = "digits"
data = {{ test_size = 100 }}
epochs = {epochs}
batch_size = 64
recipe = {{ lr = 0.05, augment = "none" }}
{trials}
""")
    return p


def submit(tmp_path: Path, cluster: object, job: Path) -> None:
    env = {"ORCH_HOME": str(tmp_path / ".orch"), "ORCH_RAY_ADDRESS": cluster.address}  # type: ignore[attr-defined]
    proc = run_orch("submit", str(job), env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def ledger(tmp_path: Path) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / '.orch' / 'orch.db'}")


def intervals(tmp_path: Path, job: str) -> list[tuple[float, float]]:
    """(start, end) of each trial's training, seconds, from its per-epoch MLflow metrics."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / '.orch' / 'mlflow.db'}")
    exp = client.get_experiment_by_name(job)
    out = []
    for run in client.search_runs([exp.experiment_id], "tags.`orch.trial_key` != ''"):
        history = sorted(
            client.get_metric_history(run.info.run_id, "epoch_time_s"), key=lambda m: m.step
        )
        assert history, run.data.tags
        start = history[0].timestamp / 1000 - history[0].value
        out.append((start, history[-1].timestamp / 1000))
    return out


def test_four_packed_trials_share_one_gpu_at_the_same_time(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trials = "\n".join(
        f'[[trial]]\nname = "lenet-{s}"\nseed = {s}\n'
        'resources = { gpus = 0.25, cpus = 1, gpu_type = "T4" }\n'
        for s in range(4)
    )
    job = write_job(tmp_path, "packed", trials, epochs=3)
    submit(tmp_path, cluster, job)
    spans = intervals(tmp_path, "packed")
    assert len(spans) == 4
    latest_start = max(s for s, _ in spans)
    earliest_end = min(e for _, e in spans)
    assert latest_start < earliest_end, spans  # all four trained at once on the one GPU
    t4 = cluster.nodes_by_type["t4"].node_id  # type: ignore[attr-defined]
    view = ledger(tmp_path)
    keys = [t.key for t in load_job(job).trials]
    assert {a["node"] for k in keys for a in view.attempts("packed", k)} == {t4}


@pytest.mark.parametrize(
    ("order", "expected"), [(["A100", "V100"], "a100"), (["V100", "A100"], "v100")]
)
def test_a_trial_binds_to_its_most_preferred_free_type(
    cluster,
    tmp_path: Path,
    order: list[str],
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    types = ", ".join(f'"{t}"' for t in order)
    trial = (
        f'[[trial]]\nname = "pick"\nresources = {{ gpus = 1, cpus = 1, gpu_type = [{types}] }}\n'
    )
    job = write_job(tmp_path, f"prefer-{expected}", trial, epochs=1)
    submit(tmp_path, cluster, job)
    view = ledger(tmp_path)
    (only,) = load_job(job).trials
    nodes = {a["node"] for a in view.attempts(f"prefer-{expected}", only.key)}
    assert nodes == {cluster.nodes_by_type[expected].node_id}  # type: ignore[attr-defined]


def test_a_trial_no_gpu_memory_can_hold_is_refused_before_launch(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The t4 node's label says 16 GB; ResNet-20 at batch 8192 needs about 17 GB."""
    trial = (
        '[[trial]]\nname = "huge"\nmodel = "resnet20"\nbatch_size = 8192\n'
        'resources = { gpus = 1, cpus = 1, gpu_type = "T4" }\n'
    )
    job = write_job(tmp_path, "huge", trial, epochs=1)
    env = {"ORCH_HOME": str(tmp_path / ".orch"), "ORCH_RAY_ADDRESS": cluster.address}  # type: ignore[attr-defined]
    proc = run_orch("submit", str(job), env=env, timeout=600)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'trial "huge" needs about 1' in proc.stderr
    assert "the largest acceptable GPU is t4 with 16 GB" in proc.stderr
