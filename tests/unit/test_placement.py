"""Binding trials to GPU types at launch (scheduling/policy/placement.py, and the Tune callback
in scheduling/adapters/placement.py): preference order, free capacity, memory, and moving a
trial that ran out of memory to a larger type."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.scheduling.adapters.placement import Placement
from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.placement import (
    GpuOutOfMemory,
    after_oom,
    choose_types,
    move_fallback,
    oom_type,
    request_types,
    room_by_type,
    stranded,
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

    def __init__(self, key: str, error_file: Path, status: str = "PENDING") -> None:
        self.config = {"trial_key": key}
        self.status = status
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


def test_a_trial_whose_bound_types_have_no_node_left_is_stranded() -> None:
    t = trial(("A100", "V100"))
    assert not stranded(t, NODES, ["a100"])
    assert stranded(t, [V100, TI], ["a100"])  # the A100 node is gone
    assert not stranded(t, [V100, TI], ["a100", "v100"])
    assert not stranded(t, [V100], None)  # unbound: nothing to free
    big = trial((), batch=8192)  # only an A100 holds it
    assert stranded(big, [replace(A100, gpus=0), V100], ["a100"])


def test_a_waiting_trial_kept_for_lost_types_is_bound_again(tmp_path: Path) -> None:
    """A trial bound to the A100 (free when Tune created it, or the type a reservation kept
    it for) whose node is then lost: at the next step it is bound to the V100 instead of
    waiting forever; a trial already running, or one whose type is still there, is left."""
    t1 = replace(trial(("A100", "V100")), key="k1")
    t2 = replace(t1, name="t2", key="k2")
    nodes = [A100, V100]
    placement = Placement({"k1": t1, "k2": t2}, lambda: list(nodes), free=lambda n: {"a100": 1})
    assert placement.types_for("k1") == ["a100"]
    placement.period_s = 0.0
    waiting = FakeTrial("k1", tmp_path / "none.txt")
    placement.on_step_end(0, [waiting])
    assert waiting.resources is None  # its A100 is still there: untouched
    nodes.remove(A100)
    running = FakeTrial("k1", tmp_path / "none.txt", status="RUNNING")
    placement.on_step_end(0, [running])
    assert running.resources is None
    placement.on_step_end(0, [waiting])
    # the V100s are all that is left: no binding, the trial's own acceptable types again
    assert placement.bound["k1"] is None and "k1" not in placement.promised
    assert waiting.resources._kwargs["bundle_label_selector"] == [  # type: ignore[attr-defined]
        {"orch/gpu-type": "in(a100,v100)"}
    ]
    # beside a type it does not accept (the 1080 Ti), it is bound to the one it does
    nodes[:] = [V100, TI]
    placement.bound["k2"] = ["a100"]
    other = FakeTrial("k2", tmp_path / "none.txt")
    placement.on_step_end(0, [other])
    assert placement.bound["k2"] == ["v100"]


def test_placement_moves_a_running_trial_to_a_freed_faster_type(tmp_path: Path) -> None:
    """The callback's side of a move (policy/migrate.py): with a faster GPU free and no
    trial waiting for it, a running trial with a measured epoch on the slower type is asked
    to stop after its next checkpoint (a stop request of class `migrated`); its run again is
    bound to the faster type. A trial waiting for a GPU blocks the move."""
    from orchestrator.protocol import EpochReport, FailureClass, TrialMigratedError
    from orchestrator.scheduling.adapters.control import Control
    from orchestrator.scheduling.policy.migrate import Rule

    slow = replace(trial(("A100", "GTX 1080 Ti")), key="k1", epochs=50)
    other = replace(slow, name="t2", key="k2")
    free = {"a100": 0.0, "gtx-1080-ti": 3.0}
    control = Control(tmp_path)
    rule = Rule(restart_s=60.0, min_gain_s=60.0, min_share=0.1)
    placement = Placement(
        {"k1": slow}, lambda: [A100, TI], free=lambda n: free, control=control, migrate=rule
    )
    placement.period_s = 0.0
    assert placement.types_for("k1") == ["gtx-1080-ti"]  # the A100 is busy
    running = FakeTrial("k1", tmp_path / "none.txt", status="RUNNING")
    placement.on_trial_start(0, [running], running)
    placement.trial_started("k1")
    report = EpochReport(epoch=0, epochs_done=1, epoch_time_s=120.0, node_id=TI.node_id)
    placement.trial_result("k1", report)
    placement.on_step_end(0, [running])
    assert control.stop_request("k1") is None  # nothing free that is faster
    free["a100"] = 1.0
    # a trial not created yet could use the A100: it goes first
    placement.specs = {"k1": slow, "k2": other}
    placement.on_step_end(0, [running])
    assert control.stop_request("k1") is None
    placement.specs = {"k1": slow}
    placement.on_step_end(0, [running])
    request = control.stop_request("k1")
    assert request is not None and request["failure_class"] == FailureClass.MIGRATED
    assert placement.moving == {"k1": "a100"} and placement.promised["k1"] == ("a100", 1.0)
    # the trial stops after its checkpoint and raises; Tune runs it again: bound to the A100
    error = tmp_path / "moved.txt"
    error.write_text(str(TrialMigratedError("after epoch 2")))
    again = FakeTrial("k1", error)
    placement.trial_failed("k1", "moved", will_retry=True, failure_class=FailureClass.MIGRATED)
    placement.on_trial_recover(0, [again], again)
    assert placement.bound["k1"] == ["a100"] and not placement.moving
    assert again.resources._kwargs["bundle_label_selector"] == [  # type: ignore[attr-defined]
        {"orch/gpu-type": "a100"}
    ]


def test_a_move_asked_too_late_is_dropped_with_its_request(tmp_path: Path) -> None:
    from orchestrator.protocol import EpochReport, FailureClass
    from orchestrator.scheduling.adapters.control import Control
    from orchestrator.scheduling.policy.migrate import Rule

    slow = replace(trial(("A100", "GTX 1080 Ti")), key="k1", epochs=50)
    control = Control(tmp_path)
    rule = Rule(restart_s=60.0, min_gain_s=60.0, min_share=0.1)
    placement = Placement(
        {"k1": slow}, lambda: [A100, TI], free=lambda n: {"a100": 1.0}, control=control,
        migrate=rule,
    )  # fmt: skip
    placement.period_s = 0.0
    running = FakeTrial("k1", tmp_path / "none.txt", status="RUNNING")
    placement.trial_started("k1")
    placement.trial_result(
        "k1", EpochReport(epoch=0, epochs_done=1, epoch_time_s=120.0, node_id=TI.node_id)
    )
    placement.on_step_end(0, [running])
    assert placement.moving == {"k1": "a100"}
    # it finished its last epoch before stopping: the request must not stop a later run
    placement.trial_completed("k1", None)
    assert control.stop_request("k1") is None and not placement.moving
    assert "k1" not in placement.promised
    # a cancel already there is never overwritten by a move
    placement.trial_started("k1")
    placement.trial_result(
        "k1", EpochReport(epoch=0, epochs_done=1, epoch_time_s=120.0, node_id=TI.node_id)
    )
    control.request_stop("k1", failure_class=FailureClass.CANCELLED, reason="orch cancel")
    placement.on_step_end(0, [running])
    request = control.stop_request("k1")
    assert request is not None and request["failure_class"] == FailureClass.CANCELLED
    assert not placement.moving


def test_no_move_without_one_node_with_room_for_the_whole_trial(tmp_path: Path) -> None:
    """Ray places a trial on one node: free GPUs of the type spread over nodes, or a node
    whose CPUs are taken, are no place to move to."""
    from orchestrator.protocol import EpochReport
    from orchestrator.scheduling.adapters.control import Control
    from orchestrator.scheduling.policy.migrate import Rule

    slow = replace(trial(("A100", "GTX 1080 Ti")), key="k1", epochs=50)
    room = {A100.node_id: (1.0, 0.0), TI.node_id: (3.0, 16.0)}  # the A100 node: no CPU
    control = Control(tmp_path)
    placement = Placement(
        {"k1": slow}, lambda: [A100, TI], free=lambda n: {"a100": 1.0}, control=control,
        migrate=Rule(60.0, 60.0, 0.1), by_node=lambda n: room,
    )  # fmt: skip
    placement.period_s = 0.0
    running = FakeTrial("k1", tmp_path / "none.txt", status="RUNNING")
    placement.trial_started("k1")
    placement.trial_result(
        "k1", EpochReport(epoch=0, epochs_done=1, epoch_time_s=120.0, node_id=TI.node_id)
    )
    placement.on_step_end(0, [running])
    assert control.stop_request("k1") is None and not placement.moving
    room[A100.node_id] = (1.0, 4.0)
    placement.on_step_end(0, [running])
    assert placement.moving == {"k1": "a100"} and control.stop_request("k1") is not None


def test_a_trial_that_fails_before_its_move_is_retried_like_any_other(tmp_path: Path) -> None:
    placement = _moved(tmp_path, {"a100": 1.0}, Clock())
    error = tmp_path / "lost.txt"
    error.write_text("ray.exceptions.ActorDiedError: The actor died unexpectedly")
    again = FakeTrial("k1", error)
    placement.on_trial_recover(0, [again], again)
    # not bound to the A100 alone: every acceptable type, as after any failure
    assert placement.bound["k1"] == ["a100", "gtx-1080-ti"] and "k1" not in placement.promised


def test_a_moved_trial_falls_back_when_its_target_was_taken() -> None:
    """move_fallback: a trial moved to the A100 that has not started there after the grace,
    while other work holds the A100 and its old 1080 Ti is free, goes to the 1080 Ti; not
    within the grace, not while the A100 has room, not when nothing else has room."""
    t = trial(("A100", "GTX 1080 Ti"))
    taken = {"a100": 0.0, "gtx-1080-ti": 1.0}
    assert move_fallback(t, NODES, "a100", taken, 7.0, 6.0) == ["gtx-1080-ti"]
    assert move_fallback(t, NODES, "a100", taken, 5.0, 6.0) is None  # within the grace
    assert move_fallback(t, NODES, "a100", {"a100": 1.0, "gtx-1080-ti": 1.0}, 7.0, 6.0) is None
    assert move_fallback(t, NODES, "a100", {"a100": 0.0, "gtx-1080-ti": 0.0}, 7.0, 6.0) is None
    # a type it ran out of memory on is never offered
    assert move_fallback(t, NODES, "a100", taken, 7.0, 6.0, {"gtx-1080-ti"}) is None


def test_the_types_another_jobs_request_accepts() -> None:
    known = ["a100", "v100", "t4"]
    assert request_types({"GPU": 1}, {"orch/gpu-type": "a100"}, known) == {"a100"}
    assert request_types({"GPU": 1}, {"orch/gpu-type": "in(a100,v100)"}, known) == {
        "a100",
        "v100",
    }
    assert request_types({"GPU": 1}, {"orch/gpu-type": "!in(a100, v100)"}, known) == {"t4"}
    assert request_types({"GPU": 1}, {"orch/gpu-type": "!t4"}, known) == {"a100", "v100"}
    assert request_types({"GPU": 1}, {"zone": "eu"}, known) is None  # any GPU type
    assert request_types({"GPU": 1, "gpu_type:v100": 1}, {}, known) == {"v100"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _moved(tmp_path: Path, free: dict[str, float], clock: Clock):  # type: ignore[no-untyped-def]
    """A Placement that has asked k1 (on the 1080 Ti) to move to the free A100."""
    from orchestrator.protocol import EpochReport
    from orchestrator.scheduling.adapters.control import Control
    from orchestrator.scheduling.policy.migrate import Rule

    slow = replace(trial(("A100", "GTX 1080 Ti")), key="k1", epochs=50)
    placement = Placement(
        {"k1": slow}, lambda: [A100, TI], free=lambda n: free, control=Control(tmp_path),
        migrate=Rule(60.0, 60.0, 0.1), others=lambda n: [], clock=clock,
    )  # fmt: skip
    placement.period_s = 0.0
    placement.trial_started("k1")
    placement.trial_result(
        "k1", EpochReport(epoch=0, epochs_done=1, epoch_time_s=120.0, node_id=TI.node_id)
    )
    placement.on_step_end(0, [FakeTrial("k1", tmp_path / "none.txt", status="RUNNING")])
    assert placement.moving == {"k1": "a100"}
    return placement


def _stopped_to_move(tmp_path: Path) -> FakeTrial:
    from orchestrator.protocol import TrialMigratedError

    error = tmp_path / "moved.txt"
    error.write_text(str(TrialMigratedError("after epoch 2")))
    return FakeTrial("k1", error)


def test_a_moved_trial_whose_target_is_taken_is_bound_again_after_the_grace(
    tmp_path: Path,
) -> None:
    """Its retry is bound to the A100; other work takes the A100 before it starts there
    while its old 1080 Ti is free: after the grace (not before) it is bound to the 1080 Ti
    and its promise on the A100 is dropped."""
    free = {"a100": 1.0, "gtx-1080-ti": 3.0}
    clock = Clock()
    placement = _moved(tmp_path, free, clock)
    again = _stopped_to_move(tmp_path)
    placement.on_trial_recover(0, [again], again)
    assert placement.bound["k1"] == ["a100"] and placement.promised["k1"] == ("a100", 1.0)
    free["a100"] = 0.0  # another job takes the A100
    clock.now += placement.move_grace_s - 1
    placement.on_step_end(0, [again])
    assert placement.bound["k1"] == ["a100"]  # within the grace: still waiting for it
    clock.now += 2
    placement.on_step_end(0, [again])
    assert placement.bound["k1"] == ["gtx-1080-ti"]
    assert placement.promised["k1"] == ("gtx-1080-ti", 1.0)
    assert again.resources._kwargs["bundle_label_selector"] == [  # type: ignore[attr-defined]
        {"orch/gpu-type": "gtx-1080-ti"}
    ]
    # it starts: nothing is watched any more
    placement.on_trial_start(0, [again], again)
    assert not placement.moved and "k1" not in placement.promised


def test_a_moved_trial_whose_target_is_free_keeps_its_binding(tmp_path: Path) -> None:
    free = {"a100": 1.0, "gtx-1080-ti": 3.0}
    clock = Clock()
    placement = _moved(tmp_path, free, clock)
    again = _stopped_to_move(tmp_path)
    placement.on_trial_recover(0, [again], again)
    clock.now += 10 * placement.move_grace_s  # Tune is slow to start it: the A100 waits
    placement.on_step_end(0, [again])
    assert placement.bound["k1"] == ["a100"] and placement.promised["k1"] == ("a100", 1.0)
    assert again.resources._kwargs["bundle_label_selector"] == [  # type: ignore[attr-defined]
        {"orch/gpu-type": "a100"}
    ]


def test_a_move_whose_target_was_taken_during_its_last_epoch_goes_where_there_is_room(
    tmp_path: Path,
) -> None:
    """The A100 is taken between the move's decision and the trial's stop: its retry is
    bound to the type with room at once (the one moment Tune takes a new binding)."""
    free = {"a100": 1.0, "gtx-1080-ti": 3.0}
    placement = _moved(tmp_path, free, Clock())
    free["a100"] = 0.0
    again = _stopped_to_move(tmp_path)
    placement.on_trial_recover(0, [again], again)
    assert placement.bound["k1"] == ["gtx-1080-ti"] and not placement.moving
    assert placement.promised["k1"] == ("gtx-1080-ti", 1.0)


def test_another_jobs_pending_request_for_the_gpu_blocks_a_move(tmp_path: Path) -> None:
    """A GPU request of another job Ray has not placed yet (`others`, read only when a move
    is about to be made) keeps the move from taking the A100 it could use; one for another
    type does not."""
    from orchestrator.protocol import EpochReport
    from orchestrator.scheduling.adapters.control import Control
    from orchestrator.scheduling.policy.migrate import Rule, Waiting

    slow = replace(trial(("A100", "GTX 1080 Ti")), key="k1", epochs=50)
    free = {"a100": 0.0, "gtx-1080-ti": 3.0}
    pending = [Waiting(1.0, frozenset({"a100"}))]
    reads = []

    def others(nodes: object) -> list[Waiting]:
        reads.append(1)
        return pending

    control = Control(tmp_path)
    placement = Placement(
        {"k1": slow}, lambda: [A100, TI], free=lambda n: free, control=control,
        migrate=Rule(60.0, 60.0, 0.1), others=others,
    )  # fmt: skip
    placement.period_s = 0.0
    placement.trial_started("k1")
    placement.trial_result(
        "k1", EpochReport(epoch=0, epochs_done=1, epoch_time_s=120.0, node_id=TI.node_id)
    )
    running = FakeTrial("k1", tmp_path / "none.txt", status="RUNNING")
    placement.on_step_end(0, [running])
    assert not reads  # no faster GPU free: nothing to ask Ray
    free["a100"] = 1.0
    placement.on_step_end(0, [running])
    assert reads and control.stop_request("k1") is None and not placement.moving
    pending[:] = [Waiting(1.0, frozenset({"gtx-1080-ti"})), Waiting(2.0, None)]
    placement.on_step_end(0, [running])
    assert placement.moving == {"k1": "a100"} and control.stop_request("k1") is not None


def test_a_type_whose_nodes_are_out_of_cpus_is_not_free() -> None:
    """room_by_type: a node's free GPUs count for a trial only if the node could hold it
    alone (its CPUs and GPUs); promises take GPUs and CPUs from a node of their type that
    holds them."""
    free = {"a": ("a100", 1.0, 1.0), "t": ("gtx-1080-ti", 1.0, 4.0)}
    assert room_by_type(free, [], cpus=1) == {"a100": 1.0, "gtx-1080-ti": 1.0}
    assert room_by_type(free, [], cpus=2) == {"a100": 0.0, "gtx-1080-ti": 1.0}
    # half the A100 and its only CPU promised: the other half cannot start anything
    assert room_by_type(free, [("a100", 0.5, 1.0)], cpus=1) == {"a100": 0.0, "gtx-1080-ti": 1.0}
    # without CPUs short, GPUs less promises, as before (an overdrawn type stays overdrawn)
    two = {"t1": ("gtx-1080-ti", 1.0, 8.0), "t2": ("gtx-1080-ti", 1.0, 8.0)}
    assert room_by_type(two, [("gtx-1080-ti", 1.0, 1.0)], cpus=1) == {"gtx-1080-ti": 1.0}
    over = [("gtx-1080-ti", 1.0, 1.0)] * 3
    assert room_by_type(two, over, cpus=1) == {"gtx-1080-ti": -1.0}
    # one free GPU on each of two nodes: no room for a 2-GPU trial (Ray puts it on one)
    assert room_by_type(two, [], cpus=1, gpus=2) == {"gtx-1080-ti": 0.0}
    assert room_by_type(two, [], cpus=1, gpus=1) == {"gtx-1080-ti": 2.0}


def test_placement_binds_past_a_preferred_type_out_of_cpus() -> None:
    """`gpu_type = ["A100", "V100"]`, half a GPU and one CPU each, the A100 node with one
    CPU: the first trial is bound to the A100; the second, though half the A100 is free,
    to the V100 (it could not start on the A100 node), instead of waiting there."""
    t1 = replace(trial(("A100", "V100"), gpus=0.5), key="k1")
    t2 = replace(t1, name="t2", key="k2")
    nodes = [replace(A100, cpus=1), V100]
    by_node = {"a": (1.0, 1.0), "v": (2.0, 16.0)}
    placement = Placement(
        {"k1": t1, "k2": t2}, lambda: nodes, free=lambda n: {"a100": 1.0, "v100": 2.0},
        by_node=lambda n: by_node,
    )  # fmt: skip
    assert placement.types_for("k1") == ["a100"]
    assert placement.types_for("k2") == ["v100"]
    # with CPUs to spare on the A100 node, both halves go there
    by_node["a"] = (1.0, 4.0)
    again = Placement({"k1": t1, "k2": t2}, lambda: nodes, by_node=lambda n: by_node)
    assert again.types_for("k1") == ["a100"] and again.types_for("k2") == ["a100"]


def test_placement_estimates_use_what_orch_measured_before() -> None:
    """Affinity, profiling and moves judge by the same learned ratios the launch order
    uses (the ledger's, by model family and GPU type)."""
    from orchestrator.spec.cost import learned_key

    t = replace(trial(("A100", "V100")), key="k1")
    plain = Placement({"k1": t}, lambda: [A100, V100], free=lambda n: {})
    taught = Placement(
        {"k1": t}, lambda: [A100, V100], free=lambda n: {},
        learned={learned_key(t, "v100"): 2.0},
    )  # fmt: skip
    before, after = plain._estimates("k1", [A100, V100]), taught._estimates("k1", [A100, V100])
    assert after["v100"] == pytest.approx(2 * before["v100"], rel=0.01)
    assert after["a100"] == before["a100"]
