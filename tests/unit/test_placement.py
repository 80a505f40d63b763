"""Binding trials to GPU types at launch (scheduling/policy/placement.py, and the Tune callback
in scheduling/adapters/placement.py): preference order, free capacity, memory, and moving a
trial that ran out of memory to a larger type."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

from orchestrator.scheduling.adapters.placement import Placement
from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.placement import (
    GpuOutOfMemory,
    after_oom,
    choose_types,
    oom_type,
    suitable_types,
)
from orchestrator.spec.load import parse_job

A100 = NodeInfo("a", "a", cpus=16, gpus=1, memory_gb=64, gpu_type="a100")
V100 = NodeInfo("v", "v", cpus=16, gpus=2, memory_gb=64, gpu_type="v100")
TI = NodeInfo("t", "t", cpus=16, gpus=4, memory_gb=64, gpu_type="gtx-1080-ti")
NODES = [A100, V100, TI]


def trial(gpu_type: object = ("A100", "V100"), batch: int = 128, gpus: float = 1):
    job = parse_job(
        {
            "defaults": {"dataset": "cifar10", "epochs": 10, "model": "resnet20"},
            "trial": [{"name": "t", "batch_size": batch,
                       "resources": {"gpus": gpus, "gpu_type": list(gpu_type) or "any"}}],
        },
        "j.toml",
    )  # fmt: skip
    return job.trials[0]


def test_most_preferred_type_with_free_capacity() -> None:
    t = trial()
    assert suitable_types(t, NODES) == ["a100", "v100"]
    assert choose_types(t, NODES, {"a100": 1, "v100": 2}) == ["a100"]
    assert choose_types(t, NODES, {"a100": 0, "v100": 2}) == ["v100"]
    # nothing free: any acceptable type, whichever frees first
    assert choose_types(t, NODES, {"a100": 0, "v100": 0}) == ["a100", "v100"]
    reverse = trial(("V100", "A100"))
    assert choose_types(reverse, NODES, {"a100": 1, "v100": 2}) == ["v100"]


def test_any_type_prefers_the_fastest_and_one_type_needs_no_binding() -> None:
    t = trial(())
    assert suitable_types(t, NODES)[0] == "a100"
    assert choose_types(t, NODES, {"a100": 0, "v100": 1, "gtx-1080-ti": 4}) == ["v100"]
    assert choose_types(t, [TI], {"gtx-1080-ti": 4}) is None


def test_types_too_small_for_the_trial_are_never_offered() -> None:
    big = trial((), batch=8192)  # ~17 GB at float32: more than a 1080 Ti or a V100 holds
    assert suitable_types(big, NODES) == ["a100"]
    assert choose_types(big, NODES, {"a100": 0, "v100": 2, "gtx-1080-ti": 4}) == ["a100"]


def test_out_of_memory_moves_the_trial_to_larger_types() -> None:
    t = trial(("GTX 1080 Ti", "V100", "A100"))
    assert after_oom(t, NODES, "gtx-1080-ti", set()) == ["v100", "a100"]
    assert after_oom(t, NODES, "v100", {"gtx-1080-ti"}) == ["a100"]
    assert after_oom(t, NODES, "a100", {"gtx-1080-ti", "v100"}) == []


def test_gpu_out_of_memory_names_its_type_and_pickles() -> None:
    err = GpuOutOfMemory("gtx-1080-ti", "OOM when allocating tensor with shape [128,64,32,32]")
    assert oom_type(f"Traceback ...\n{err}") == "gtx-1080-ti"
    again = pickle.loads(pickle.dumps(err))
    assert oom_type(str(again)) == "gtx-1080-ti"
    assert oom_type("ValueError: bad") is None


class FakeTrial:
    """What Placement reads and calls on a Tune trial."""

    def __init__(self, key: str, error_file: Path) -> None:
        self.config = {"trial_key": key}
        self.error_file = str(error_file)
        self.resources = None

    def update_resources(self, resources: object) -> None:
        self.resources = resources


def test_placement_promises_capacity_and_rebinds_after_oom(tmp_path: Path) -> None:
    t1 = trial(("GTX 1080 Ti", "A100"))
    t2 = replace(t1, name="t2", key="k2")
    t1 = replace(t1, key="k1")
    free = {"a100": 1.0, "gtx-1080-ti": 4.0}
    placement = Placement({"k1": t1, "k2": t2}, lambda: [A100, TI], free=lambda nodes: free)
    assert placement.types_for("k1") == ["gtx-1080-ti"]
    free["gtx-1080-ti"] = 1.0  # one 1080 Ti left, promised to k1 until it starts
    assert placement.types_for("k2") == ["a100"]
    error = tmp_path / "error.txt"
    error.write_text(str(GpuOutOfMemory("gtx-1080-ti", "OOM when allocating")))
    fake = FakeTrial("k1", error)
    placement.on_trial_recover(0, [], fake)
    assert placement.excluded["k1"] == {"gtx-1080-ti"} and placement.bound["k1"] == ["a100"]
    bundle_selector = fake.resources._kwargs["bundle_label_selector"]  # type: ignore[attr-defined]
    assert bundle_selector == [{"orch/gpu-type": "a100"}]
    other = FakeTrial("k2", tmp_path / "missing.txt")
    # not an OOM (a node lost): every acceptable type again, whichever frees first, since
    # the bound type's only node may be the one that died
    placement.on_trial_recover(0, [], other)
    assert other.resources._kwargs["bundle_label_selector"] == [  # type: ignore[attr-defined]
        {"orch/gpu-type": "in(a100,gtx-1080-ti)"}
    ]
