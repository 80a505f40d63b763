"""`orch cluster check` on a real multi-node Ray cluster (ray.cluster_utils.Cluster: three
raylets on this machine, logical GPUs, node labels as the start scripts set them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.scheduling.policy.gputypes import LABEL, RESOURCE_PREFIX
from tests.conftest import run_orch

pytestmark = pytest.mark.integration


def _typed(slug: str, gpus: int) -> dict[str, object]:
    return {
        "num_cpus": 1,
        "num_gpus": gpus,
        "resources": {f"{RESOURCE_PREFIX}{slug}": gpus},
        "labels": {LABEL: slug},
    }


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "labels": {LABEL: "cpu"}, "include_dashboard": False},
    )
    try:
        c.add_node(**_typed("gtx-1080-ti", 4))
        c.add_node(**_typed("a100-sxm4-80gb", 8))
        c.wait_for_nodes()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def test_inventory_and_storage_probe(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import ray

    from orchestrator.scheduling.adapters.inventory import (
        check_storage,
        probe_nodes,
        snapshot,
        summarize,
    )

    ray.init(address=cluster.address)
    try:
        nodes = snapshot()
        assert len(nodes) == 3
        got = [(s.gpu_type, s.nodes, s.gpus, s.cpus) for s in summarize(nodes)]
        assert got == [("a100-sxm4-80gb", 1, 8, 1), ("gtx-1080-ti", 1, 4, 1), ("cpu", 1, 0, 1)]

        report = check_storage(str(tmp_path / "storage"), nodes, timeout_s=120)
        assert report.ok and not report.uri, report
        assert {p.node.node_id for p in report.probes} == {n.node_id for n in nodes}
        assert all(p.readable and p.hostname != "?" for p in report.probes)
        assert not list((tmp_path / "storage" / ".orch-probe").iterdir())  # cleaned up

        # A path no node has: every node answers "no", with the reason.
        missing = probe_nodes(str(tmp_path / "nowhere.txt"), "t", nodes, timeout_s=120)
        assert [p.readable for p in missing] == [False] * 3
        assert all("FileNotFoundError" in p.detail for p in missing)

        uri = check_storage("mock:///bucket/orch", nodes)
        assert uri.ok and uri.uri and not uri.probes and "by construction" in uri.detail
        bad = check_storage("nosuchscheme://bucket/orch", nodes)
        assert not bad.ok and "pyarrow.fs cannot open it" in bad.detail
    finally:
        ray.shutdown()


def test_cli_cluster_check(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"ORCH_HOME": str(tmp_path / ".orch")}
    out = run_orch("cluster", "check", "--address", cluster.address, env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "3 node(s), 12 GPU(s), 3 CPU(s)" in text
    for gpu_type in ("gtx-1080-ti", "a100-sxm4-80gb", "cpu"):
        assert gpu_type in text
    assert f"storage {tmp_path / '.orch' / 'storage'}: shared" in text.replace("\n", "")
    assert text.count(" yes") >= 3, text


def test_cli_unknown_action(tmp_path: Path) -> None:
    out = run_orch("cluster", "chek", env={"ORCH_HOME": str(tmp_path / ".orch")}, timeout=120)
    assert out.returncode == 2
    assert "unknown action 'chek'. Did you mean: check?" in out.stderr
