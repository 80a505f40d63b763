"""`orch cluster check`'s storage-sharing verdict on real directories: a node that sees the
driver's directory says "shared", a node whose path leads to another directory says "not
shared" (scheduling/adapters/inventory.py). The Ray side, one task per node, is in
tests/integration/test_cluster_check.py; there every node shares this machine's disk."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.scheduling.adapters.inventory import (
    NodeProbe,
    read_probe,
    verdict,
    write_probe,
)
from orchestrator.scheduling.policy.cluster import NodeInfo

A = NodeInfo("node-a", "10.0.0.1", cpus=8, gpus=1, memory_gb=64, gpu_type="a100")
B = NodeInfo("node-b", "10.0.0.2", cpus=8, gpus=1, memory_gb=64, gpu_type="a100")


def answer(node: NodeInfo, path: Path, token: str) -> NodeProbe:
    readable, host, detail = read_probe(str(path), token)
    return NodeProbe(node, host, readable, detail)


def test_the_same_directory_is_shared(tmp_path: Path) -> None:
    storage = tmp_path / "nfs"
    probe, token = write_probe(storage)
    mount = tmp_path / "mount"  # the same directory reached by another name
    os.symlink(storage, mount)
    report = verdict(
        str(storage),
        [answer(A, probe, token), answer(B, mount / probe.relative_to(storage), token)],
    )
    assert report.ok and not report.unreadable
    assert report.detail == "all 2 node(s) read the driver's probe file"


def test_another_directory_is_not_shared(tmp_path: Path) -> None:
    storage, local_disk = tmp_path / "nfs", tmp_path / "local-disk"
    probe, token = write_probe(storage)
    elsewhere = local_disk / probe.relative_to(storage)  # what node B has at that path
    report = verdict(str(storage), [answer(A, probe, token), answer(B, elsewhere, token)])
    assert not report.ok
    assert report.detail == "1 of 2 nodes cannot read the driver's probe file"
    assert [p.node for p in report.unreadable] == [B]
    assert "FileNotFoundError" in report.unreadable[0].detail

    # Node B's own disk holds a file at that path (another driver's probe, a copy): its
    # content is not the driver's token, so still not shared.
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_text("another token")
    report = verdict(str(storage), [answer(A, probe, token), answer(B, elsewhere, token)])
    assert not report.ok and [p.node for p in report.unreadable] == [B]
    assert "a different file at that path" in report.unreadable[0].detail


def test_no_answer_is_not_shared(tmp_path: Path) -> None:
    report = verdict(str(tmp_path), [])
    assert not report.ok and report.detail == "no alive node answered the probe"


def test_each_probe_file_is_new(tmp_path: Path) -> None:
    first, token1 = write_probe(tmp_path)
    second, token2 = write_probe(tmp_path)
    assert first != second and token1 != token2
    assert first.read_text() == token1 and second.read_text() == token2


def test_object_store_probe_leaves_no_folder_it_made() -> None:
    """Issue 15: the writability probe leaves nothing it did not find (pyarrow's mock
    filesystem has folders, as a local one does); folders it found are kept."""
    from pyarrow.fs import FileSelector

    from orchestrator.storage import object_store
    from orchestrator.stores import check_storage_writable

    uri = "mock:///probe-bucket/orch"
    fs, _ = object_store(uri)

    def everything() -> list[str]:
        return sorted(i.path for i in fs.get_file_info(FileSelector("", recursive=True)))

    check_storage_writable(uri)
    assert everything() == []
    fs.create_dir("probe-bucket/orch/.orch-probe")
    check_storage_writable(uri)
    assert everything() == ["probe-bucket", "probe-bucket/orch", "probe-bucket/orch/.orch-probe"]
