"""`orch cluster check` on a real multi-node Ray cluster (ray.cluster_utils.Cluster: three
raylets on this machine, logical GPUs, node labels as the start scripts set them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import OrchestratorError
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
        with pytest.raises(OrchestratorError, match="'nosuchscheme://bucket/orch': cannot open"):
            check_storage("nosuchscheme://bucket/orch", nodes)
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


# An S3 endpoint that refuses connections (nothing listens on port 1).
REFUSING_S3 = "s3://bucket/orch?endpoint_override=127.0.0.1:1&scheme=http"


def test_unreachable_object_store_is_an_error_not_unshared(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 15: a store that cannot be reached is said to be so (one line, the URI, the
    fix), not reported "NOT shared" with the multi-node advice."""
    from orchestrator import stores
    from orchestrator.scheduling.adapters.inventory import check_storage

    with pytest.raises(OrchestratorError) as refused:
        check_storage(REFUSING_S3, [])
    line = str(refused.value)
    assert "\n" not in line and line.startswith(f"storage {REFUSING_S3}: could not be reached")
    assert (
        "connect" in line
        and "--storage" in line
        and "shared" not in line.replace("every node reaches", "")
    )

    monkeypatch.setattr(stores, "STORAGE_PROBE_S", 1.0)  # gs:// here: no network, no answer
    with pytest.raises(
        OrchestratorError,
        match=r"gs://no-such-orch-bucket/x: could not be "
        r"reached .*\(no answer within 1 s\)",
    ):
        check_storage("gs://no-such-orch-bucket/x", [])


def test_cli_cluster_check_unreachable_store(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"ORCH_HOME": str(tmp_path / ".orch")}
    out = run_orch(
        "cluster",
        "check",
        "--address",
        cluster.address,
        "--storage",
        REFUSING_S3,
        env=env,
        timeout=300,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "could not be reached" in errors[0], out.stderr
    assert REFUSING_S3 in errors[0] and "Traceback" not in out.stderr
    assert "NOT shared" not in out.stdout and "Multi-node" not in out.stdout, out.stdout


def test_cli_unknown_action(tmp_path: Path) -> None:
    out = run_orch("cluster", "chek", env={"ORCH_HOME": str(tmp_path / ".orch")}, timeout=120)
    assert out.returncode == 2
    assert "unknown action 'chek'. Did you mean: check?" in out.stderr
