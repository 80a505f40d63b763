"""`orch plan JOB.toml --address HOST:PORT` against a live multi-node cluster started by the
project's own scripts (tests/integration/real_cluster.py: a CPU head, a node with two GTX
1080 Ti and a node with one V100, one CPU each), through the CLI as a user types it (issue
13 §2): the plan's hour columns are the live node types, and its makespan is simulated on
those nodes, their CPUs included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.integration.real_cluster import GPU_TYPES, RealCluster

pytestmark = pytest.mark.integration

LIVE_TYPES = sorted(t for t in GPU_TYPES.values() if t != "cpu")  # gtx-1080-ti, v100-sxm2-16gb


def plan_json(cluster: RealCluster, job: Path, home: Path, *extra: str) -> dict[str, Any]:
    proc = cluster.orch("plan", str(job), "--format", "json", *extra, home=home, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def test_plan_uses_the_live_node_types_and_their_capacity(
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    real_cluster.heal()
    home = tmp_path / ".orch"
    # The LeNet-tricks job as shipped asks 2 CPUs and 8 GB per trial; this cluster's nodes
    # have one CPU (and share this machine's memory), so the same four trials at 1 CPU and
    # 1 GB each, a quarter of a GPU as in the file.
    shipped = (ROOT / "jobs" / "lenet_tricks.toml").read_text()
    assert "cpus = 2" in shipped and "memory_gb = 8" in shipped
    job = tmp_path / "lenet_tricks.toml"
    job.write_text(
        shipped.replace("cpus = 2", "cpus = 1", 1).replace("memory_gb = 8", "memory_gb = 1", 1)
    )

    offline = plan_json(real_cluster, job, home)
    assert offline["cluster"] is None and offline["total"]["makespan_h"] is None

    live = plan_json(real_cluster, job, home, "--address", real_cluster.address)
    assert live["gpu_types"] == LIVE_TYPES
    assert live["cluster"] == {
        "source": f"live cluster at {real_cluster.address}",
        "gpus": "2 x gtx-1080-ti + 1 x v100-sxm2-16gb",
    }
    assert len(live["trials"]) == 4
    for trial in live["trials"]:
        hours = trial["hours"]
        assert set(hours) == set(LIVE_TYPES), hours
        assert all(h is not None and h > 0 for h in hours.values()), hours
        assert trial["problem"] is None
    # Makespan on this cluster: one CPU per GPU node, so two trials run at a time however
    # many quarter-GPUs there are: some node runs two of the four back to back.
    shortest = min(min(t["hours"].values()) for t in live["trials"])
    total = live["total"]
    assert total["lower_bound_h"] >= 2 * shortest * 0.999, total
    assert total["makespan_h"] >= total["lower_bound_h"] > 0, total

    text = real_cluster.orch("plan", str(job), "--address", real_cluster.address, home=home)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "h gtx-1080-ti" in text.stdout and "h v100-sxm2-16gb" in text.stdout
    assert (
        f"makespan on 2 x gtx-1080-ti + 1 x v100-sxm2-16gb (live cluster at "
        f"{real_cluster.address}): {total['makespan_h']:.1f} h in orch's longest-first order"
    ) in text.stdout


def test_plan_names_trials_no_live_node_can_hold(real_cluster: RealCluster, tmp_path: Path) -> None:
    """jobs/full_table.toml as shipped asks 4 CPUs (8 for DenseNet-160) per trial: no node of
    this cluster has that many, which the plan says instead of a makespan."""
    real_cluster.heal()
    home = tmp_path / ".orch"
    job = ROOT / "jobs" / "full_table.toml"
    plan = plan_json(real_cluster, job, home, "--address", real_cluster.address)
    assert plan["gpu_types"] == LIVE_TYPES
    assert all(set(t["hours"]) == set(LIVE_TYPES) for t in plan["trials"])
    assert plan["total"]["makespan_h"] is None
    lenet = next(t for t in plan["trials"] if t["model"] == "lenet5")
    assert lenet["problem"].startswith(
        f'trial "{lenet["name"]}" asks for 1 GPU (any type), 4 CPU'
    ), lenet["problem"]
    assert f"no node of the live cluster at {real_cluster.address} can hold it" in lenet["problem"]
    text = real_cluster.orch("plan", str(job), "--address", real_cluster.address, home=home)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "makespan: no trial left to run fits a node of 2 x gtx-1080-ti" in text.stdout
    assert text.stdout.count("refused before launch:") == len(plan["trials"])
