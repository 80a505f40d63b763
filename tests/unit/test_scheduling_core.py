"""The pure parts of scheduling: GPU type names, feasibility, order, failure classes, ETA."""

from __future__ import annotations

from datetime import datetime

import pytest

from orchestrator.errors import InfeasibleError
from orchestrator.failures import classify, counts_against_budget
from orchestrator.ledger import TrialView
from orchestrator.protocol import FailureClass
from orchestrator.scheduling.policy.cluster import NodeInfo, node_from_ray
from orchestrator.scheduling.policy.eta import format_eta, job_eta_s, trial_eta_s
from orchestrator.scheduling.policy.feasibility import check_feasible, fits, nodes_from_types
from orchestrator.scheduling.policy.gputypes import slug
from orchestrator.scheduling.policy.order import longest_first
from orchestrator.scheduling.policy.resources import bundle, label_selector
from orchestrator.spec.load import parse_job
from orchestrator.spec.model import NodeType, Resources

TI = NodeInfo("n1", "10.0.0.1", cpus=8, gpus=4, memory_gb=64, gpu_type="gtx-1080-ti")
A100 = NodeInfo("n2", "10.0.0.2", cpus=16, gpus=8, memory_gb=256, gpu_type="a100-sxm4-80gb")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("GTX 1080 Ti", "gtx-1080-ti"),
        ("NVIDIA GeForce GTX 1080 Ti", "gtx-1080-ti"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm4-80gb"),
        ("Tesla V100-SXM2-16GB", "v100-sxm2-16gb"),
    ],
)
def test_slug(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_node_from_ray_reads_label_then_resource() -> None:
    labelled = node_from_ray(
        {
            "NodeID": "x",
            "Alive": True,
            "Labels": {"orch/gpu-type": "a100"},
            "Resources": {"CPU": 4, "GPU": 2, "memory": 2 * 1024**3},
        }
    )
    assert (labelled.gpu_type, labelled.gpus, labelled.memory_gb) == ("a100", 2, 2)
    by_resource = node_from_ray({"Resources": {"CPU": 4, "GPU": 1, "gpu_type:t4": 1}})
    assert by_resource.gpu_type == "t4"
    assert node_from_ray({"Resources": {"CPU": 4}}).gpu_type == "cpu"


def test_fits_by_type_count_and_memory() -> None:
    assert fits(Resources(gpus=1, gpu_type=("A100",)), A100)  # detected full name matches
    assert not fits(Resources(gpus=1, gpu_type=("A100",)), TI)
    assert fits(Resources(gpus=4), TI) and not fits(Resources(gpus=5), TI)
    assert fits(Resources(gpus=0.5, gpu_type=("GTX 1080 Ti",)), TI)
    assert not fits(Resources(gpus=1, memory_gb=128), TI)
    assert fits(Resources(cpus=2), TI)  # a CPU trial ignores GPU types


def test_check_feasible_lists_every_impossible_trial() -> None:
    job = parse_job(
        {
            "defaults": {"dataset": "digits", "epochs": 1, "model": "lenet5"},
            "trial": [
                {"name": "ok", "resources": {"gpus": 2}},
                {"name": "too-big", "seed": 1, "resources": {"gpus": 16}},
                {"name": "wrong-type", "seed": 2, "resources": {"gpus": 1, "gpu_type": "H100"}},
            ],
        },
        "j.toml",
    )
    with pytest.raises(InfeasibleError) as e:
        check_feasible(job.trials, [TI, A100])
    msg = str(e.value)
    assert 'trial "too-big" asks for 16 GPU (any type)' in msg
    assert 'trial "wrong-type" asks for 1 GPU (H100)' in msg and '"ok"' not in msg
    assert "a100-sxm4-80gb: 8 GPU, 16 CPU" in msg and "gtx-1080-ti: 4 GPU" in msg
    # an autoscaler that can add an H100 node makes it feasible
    h100 = nodes_from_types([NodeType(name="h", cpus=32, gpus=8, gpu_type="H100")])
    with pytest.raises(InfeasibleError, match="too-big"):
        check_feasible(job.trials, [TI, A100, *h100])


def test_bundle_and_label_selector() -> None:
    res = Resources(gpus=2, cpus=4, memory_gb=8, gpu_type=("A100", "GTX 1080 Ti"))
    assert bundle(res) == {"CPU": 4.0, "GPU": 2.0, "memory": 8 * 1024**3}
    assert label_selector(res, [TI, A100]) == {
        "orch/gpu-type": "in(a100,a100-sxm4-80gb,gtx-1080-ti)"
    }
    assert label_selector(Resources(gpus=1), [TI]) is None
    assert label_selector(Resources(gpus=1, gpu_type=("A100",)), []) == {"orch/gpu-type": "a100"}


def test_longest_first_uses_cost_and_speed() -> None:
    job = parse_job(
        {
            "defaults": {"dataset": "cifar10", "resources": {"gpus": 1}},
            "trial": [
                {"name": "short", "model": "lenet5", "epochs": 10},
                {"name": "long", "model": "resnet110", "epochs": 200},
                {"name": "mid", "model": "resnet20", "epochs": 200},
            ],
        },
        "j.toml",
    )
    assert [t.name for t in longest_first(job.trials, [TI], {})] == ["long", "mid", "short"]


def test_failure_classes() -> None:
    assert (
        classify("ray.exceptions.ActorDiedError: The actor died unexpectedly")
        == FailureClass.NODE_LOST
    )
    assert classify("ray.exceptions.OutOfMemoryError: Task was killed") == FailureClass.OOM
    assert classify("ValueError: boom") == "error"
    killed_node = (  # Tune's error file when the trial's node was SIGKILLed (Ray 2.60)
        "The actor d02e is unavailable: The actor is temporarily unavailable: RpcError: "
        "RPC error: Socket closed rpc_code: 14. The task may or may not have been executed."
    )
    assert classify(killed_node) == FailureClass.NODE_LOST
    assert not counts_against_budget(FailureClass.NODE_LOST) and counts_against_budget(
        FailureClass.OOM
    )

    # a move to a faster GPU (what the trial raises): not a failure, never counted
    from orchestrator.protocol import TrialMigratedError

    moved = f"ray.exceptions.RayTaskError: {TrialMigratedError('after epoch 3: to a100')}"
    assert classify(moved) == FailureClass.MIGRATED
    assert not counts_against_budget(FailureClass.MIGRATED)


def view(state: str, done: int, total: int, epoch_s: float | None, model: str = "m") -> TrialView:
    return TrialView(
        job="j",
        key=f"{state}{done}",
        name="t",
        model=model,
        state=state,
        epochs_done=done,
        epochs_total=total,
        last_accuracy=None,
        test_accuracy=None,
        node=None,
        gpu=None,
        attempts=0,
        error=None,
        mlflow_run_id=None,
        updated_at=datetime(2026, 1, 1),
        epoch_time_s=epoch_s,
    )


def test_eta() -> None:
    running = view("RUNNING", 2, 10, 30.0)
    pending = view("PENDING", 0, 10, None)
    assert trial_eta_s(running) == 240.0
    assert trial_eta_s(pending, [running, pending]) == 300.0  # borrows the model's epoch time
    assert job_eta_s([running, pending]) == 540.0  # one running: the work is serial
    assert job_eta_s([running, view("FINISHED", 10, 10, 30.0)]) == 240.0
    assert job_eta_s([view("PENDING", 0, 5, None, model="other"), running]) is None
    assert (format_eta(59), format_eta(600), format_eta(3 * 3600 + 60)) == (
        "59 s",
        "10 min",
        "3h01",
    )
