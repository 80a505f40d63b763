"""A move does not take a GPU another job is waiting for (scheduling/policy/migrate.py,
`pending_elsewhere` in scheduling/adapters/capacity.py), on the real multi-node Ray cluster
of test_migration.py (its fixture and job, with more epochs), driven by the real
`orch submit`.

The a100 is held by a plain actor when the trial starts, so the trial starts on the t4.
Another job (this test process: a Ray job of its own) has asked for the a100 with a
placement group. Once the trial has trained an epoch, the holder ends: the a100's GPU is
free, and without that request orch would move the trial there at once (as
test_migration.py shows). The request stays pending, as Ray cannot place it yet (it also
asks for memory on the a100 node that a second actor holds: without that, Ray would place
it within milliseconds, before orch looks, and the test could not tell the two apart).
While it is pending no move is asked for; once it is removed, the trial moves."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ledger import Ledger
from orchestrator.protocol import FailureClass
from orchestrator.scheduling.adapters.control import Control
from orchestrator.scheduling.policy.gputypes import LABEL
from orchestrator.spec.load import load_job
from tests.conftest import run_orch
from tests.integration.test_migration import (
    EPOCHS,
    cluster,  # noqa: F401 - the fixture
    move_env,
)
from tests.integration.test_migration import JOB as MOVE_JOB

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LONGER = 14  # epochs: the trial must outlast the wait below and still have some to move
# a smaller data set than test_migration's: epochs of a few seconds on two busy cores
JOB = MOVE_JOB.replace(f"epochs = {EPOCHS}", f"epochs = {LONGER}").replace(
    "train_size = 800, test_size = 100", "train_size = 128, test_size = 32"
)
# Placement checks every 2 s: without the other job's request, the move is asked for at the
# first check after the a100 frees; 4 checks with none is a clear "no".
BLOCKED_S = 8.0


def _epochs_done(home: Path) -> int:
    if not (home / "orch.db").exists():
        return 0
    view = Ledger(f"sqlite:///{home / 'orch.db'}").job("move")
    return view.trials[0].epochs_done if view is not None and view.trials else 0


def _wait_for_epochs(home: Path, n: int, submit: Any, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not submit.done():
        done = _epochs_done(home)
        if done >= n:
            return done
        time.sleep(0.5)
    pytest.fail(f"the trial trained fewer than {n} epochs: {submit.done() and submit.result()}")


@pytest.mark.parametrize("kind", ["group", "actor"])
def test_no_move_takes_a_gpu_another_jobs_pending_request_waits_for(
    cluster: Any,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    kind: str,
) -> None:
    """Their request is a placement group, or a plain actor asking for a GPU (Ray reports
    it among the cluster's pending requests, without its label selector: it counts for
    every type)."""
    import ray
    from ray.util.placement_group import (
        placement_group,
        placement_group_table,
        remove_placement_group,
    )
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    assert f"epochs = {LONGER}" in JOB and "train_size = 128" in JOB
    ray.init(address=cluster.address, ignore_reinit_error=True)
    a100 = cluster.nodes_by_type["a100"].node_id
    (info,) = [n for n in ray.nodes() if n["NodeID"] == a100]
    memory = float(info["Resources"]["memory"])

    @ray.remote(num_cpus=0, num_gpus=1, resources={"busy": 1})
    class Holder:
        def ping(self) -> str:
            return "held"

    @ray.remote(num_cpus=0)
    class MemoryHog:
        def ping(self) -> str:
            return "held"

    holder = Holder.remote()  # type: ignore[attr-defined]
    hog = MemoryHog.options(  # type: ignore[attr-defined]
        memory=int(memory * 0.9),
        scheduling_strategy=NodeAffinitySchedulingStrategy(a100, soft=False),
    ).remote()
    assert ray.get([holder.ping.remote(), hog.ping.remote()], timeout=120) == ["held"] * 2
    # another job's request for the a100: its GPU and half the node's memory
    if kind == "group":
        theirs = placement_group(
            [{"GPU": 1, "memory": int(memory * 0.5)}], bundle_label_selector=[{LABEL: "a100"}]
        )
    else:
        theirs = Holder.options(  # type: ignore[attr-defined]
            resources={}, memory=int(memory * 0.5), label_selector={LABEL: "a100"}
        ).remote()

    job_file = tmp_path / "move.toml"
    job_file.write_text(JOB)
    (trial,) = load_job(job_file).trials
    home = tmp_path / ".orch"
    env = move_env(home, cluster.address)
    control = Control(home / "storage")
    ledger = Ledger(f"sqlite:///{home / 'orch.db'}")
    with ThreadPoolExecutor(1) as pool:
        submit = pool.submit(run_orch, "submit", str(job_file), env=env, timeout=900)
        _wait_for_epochs(home, 1, submit, 600)
        ray.kill(holder)  # the a100's GPU is free; their request still cannot be placed
        start = time.monotonic()
        while time.monotonic() - start < BLOCKED_S:
            assert control.stop_request(trial.key) is None, "a move took their a100"
            time.sleep(0.25)
        if kind == "group":
            state = placement_group_table(theirs)
            assert state["state"] == "PENDING", state
            assert state["stats"]["scheduling_state"] != "INFEASIBLE", state
        else:
            ready, _ = ray.wait([theirs.ping.remote()], timeout=0)
            assert not ready, "their actor started: the test cannot tell"
        assert len(ledger.attempts("move", trial.key)) == 1
        blocked_until = _epochs_done(home)
        assert blocked_until < LONGER - 1, "the trial ran out of epochs to move"
        # their request is gone: the a100 may be taken
        if kind == "group":
            remove_placement_group(theirs)
        else:
            ray.kill(theirs)
        done = submit.result()
    assert done.returncode == 0, done.stdout + done.stderr

    nodes = {t: n.node_id for t, n in cluster.nodes_by_type.items()}
    history = ledger.attempts("move", trial.key)
    assert [(a["node"], a["failure_class"], a["outcome"]) for a in history] == [
        (nodes["t4"], FailureClass.MIGRATED, "RETRYING"),
        (nodes["a100"], None, "FINISHED"),
    ], history
    # it moved only after their request was gone
    assert history[1]["start_epoch"] > blocked_until, (history, blocked_until)
    ray.kill(hog)
