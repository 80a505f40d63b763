"""What a cluster offers per GPU type, and whether every node can reach orch's storage.

`snapshot` lists the connected cluster's alive nodes. `summarize` is pure (NodeInfo in, one
TypeSummary per GPU type out). `check_storage` writes a probe file from the driver
(`write_probe`) and asks a tiny Ray task pinned to each alive node to read it back
(`read_probe`); `verdict` turns the answers into "shared" or "not shared". Multi-node trials
need a storage path every node shares (NFS or an object store), or a trial resumed on
another node would not find its checkpoints.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.scheduling.policy.cluster import NodeInfo, node_from_ray
from orchestrator.scheduling.policy.gputypes import CPU
from orchestrator.storage import PROBE_DIR, is_uri, local_path


def snapshot() -> list[NodeInfo]:
    """Alive nodes of the connected cluster."""
    import ray

    return [node_from_ray(n) for n in ray.nodes() if n.get("Alive")]


@dataclass(frozen=True)
class TypeSummary:
    gpu_type: str
    nodes: int
    gpus: float
    cpus: float
    memory_gb: float
    largest: NodeInfo  # most GPUs, then CPUs, then memory: the biggest single trial fits here


def summarize(nodes: Sequence[NodeInfo]) -> list[TypeSummary]:
    """One summary per GPU type over the alive nodes: GPU types by total GPUs (most
    first), then 'unlabelled', then 'cpu'."""
    by_type: dict[str, list[NodeInfo]] = {}
    for n in nodes:
        if n.alive:
            by_type.setdefault(n.gpu_type, []).append(n)
    out = [
        TypeSummary(
            gpu_type=t,
            nodes=len(ns),
            gpus=sum(n.gpus for n in ns),
            cpus=sum(n.cpus for n in ns),
            memory_gb=sum(n.memory_gb for n in ns),
            largest=max(ns, key=lambda n: (n.gpus, n.cpus, n.memory_gb)),
        )
        for t, ns in by_type.items()
    ]
    rank = {CPU: 2, "unlabelled": 1}
    return sorted(out, key=lambda s: (rank.get(s.gpu_type, 0), -s.gpus, s.gpu_type))


@dataclass(frozen=True)
class NodeProbe:
    node: NodeInfo
    hostname: str
    readable: bool
    detail: str = ""  # why not, when not readable


@dataclass(frozen=True)
class StorageReport:
    storage: str
    uri: bool  # an object-store URI (s3://, gs://, ...): shared by construction
    ok: bool  # every node can read it (or the URI opens)
    detail: str
    probes: tuple[NodeProbe, ...] = ()

    @property
    def unreadable(self) -> list[NodeProbe]:
        return [p for p in self.probes if not p.readable]


def check_storage(
    storage: str, nodes: Sequence[NodeInfo], *, timeout_s: float = 60.0
) -> StorageReport:
    """Is `storage` shared by every node of the connected Ray cluster?"""
    if is_uri(storage):
        return _check_uri(storage)
    try:
        probe, token = write_probe(local_path(storage).absolute())
    except OSError as e:
        return StorageReport(storage, False, False, f"the driver cannot write it: {e}")
    try:
        probes = probe_nodes(str(probe), token, nodes, timeout_s=timeout_s)
    finally:
        probe.unlink(missing_ok=True)
    return verdict(storage, probes)


def write_probe(root: Path) -> tuple[Path, str]:
    """The driver's probe file under `root` and the fresh token it holds (the caller
    deletes it). The name is new each time, so no node can hold an old copy of it."""
    token = uuid.uuid4().hex
    probe = root / PROBE_DIR / f"{socket.gethostname()}-{os.getpid()}-{token[:8]}.txt"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text(token)
    return probe, token


def verdict(storage: str, probes: Sequence[NodeProbe]) -> StorageReport:
    """Shared only when every node read the driver's probe file, and at least one did: no
    answer is no evidence."""
    if not probes:
        return StorageReport(storage, False, False, "no alive node answered the probe")
    bad = [p for p in probes if not p.readable]
    detail = (
        f"all {len(probes)} node(s) read the driver's probe file"
        if not bad
        else f"{len(bad)} of {len(probes)} nodes cannot read the driver's probe file"
    )
    return StorageReport(storage, False, not bad, detail, tuple(probes))


def probe_nodes(
    path: str, token: str, nodes: Sequence[NodeInfo], *, timeout_s: float = 60.0
) -> list[NodeProbe]:
    """Runs `read_probe` on each alive node and collects the answers. A node that does not
    answer within `timeout_s`, or where the task fails, counts as unreadable."""
    alive = [n for n in nodes if n.alive]
    answers = on_each_node(read_probe, {n.node_id: (path, token) for n in alive}, timeout_s)
    out = []
    for n in alive:
        answered, value = answers[n.node_id]
        readable, host, detail = value if answered else (False, "?", value)
        out.append(NodeProbe(n, host, readable, detail))
    return out


def on_each_node(
    fn: Callable[..., Any], calls: Mapping[str, tuple[Any, ...]], timeout_s: float
) -> dict[str, tuple[bool, Any]]:
    """Runs `fn(*args)` once on each node of `calls` (node id -> args), pinned there by hard
    node affinity, with num_cpus=0 so that it runs even on a node whose CPUs are all busy
    with trials, and no retries. Node id -> (True, what fn returned), or (False, why there
    is no answer: none within `timeout_s`, or the task failed there)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if not calls:
        return {}
    # Any: Ray's stubs type a remote function by its arity, which `fn` does not fix.
    task: Any = ray.remote(num_cpus=0, max_retries=0)(fn)
    refs = {
        node_id: task.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
        ).remote(*args)
        for node_id, args in calls.items()
    }
    ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
    done = set(ready)
    out: dict[str, tuple[bool, Any]] = {}
    for node_id, ref in refs.items():
        if ref not in done:
            ray.cancel(ref, force=True)
            out[node_id] = (False, f"no answer within {timeout_s:.0f} s")
            continue
        try:
            out[node_id] = (True, ray.get(ref))
        except Exception as e:  # the node died, or the task could not run there
            out[node_id] = (False, f"{type(e).__name__}: {e}")
    return out


def read_probe(path: str, token: str) -> tuple[bool, str, str]:
    """On a node: can it read the driver's probe file, with the driver's content?"""
    host = socket.gethostname()
    try:
        content = Path(path).read_text()
    except OSError as e:
        return False, host, f"{type(e).__name__}: {e.strerror or e}"
    if content != token:
        return False, host, "a different file at that path (a local disk, not shared)"
    return True, host, ""


def _check_uri(storage: str) -> StorageReport:
    """An object store is shared by construction; check that it opens from here. One that
    cannot be reached is an error, not a "not shared" report: it may well be shared, and
    the multi-node advice would send the user after the wrong problem."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.stores import StorageNotWritable, check_storage_writable

    try:  # the one storage probe, bounded in time (a GCS client retries for 15 minutes)
        check_storage_writable(storage)
    except StorageNotWritable as e:  # no network, a refusing endpoint, no credentials
        # (an unknown scheme is object_store's own one line, raised as it is)
        raise OrchestratorError(
            f"storage {storage}: could not be reached or written from this machine "
            f"({e.reason or e}). Check the network, the store's endpoint and its "
            "credentials, or pass --storage a path or URI that every node reaches."
        ) from None
    try:
        import pyarrow.fs as pafs

        fs, path = pafs.FileSystem.from_uri(storage)
        info = fs.get_file_info(path)
    except Exception as e:  # unknown scheme, no credentials, no network
        return StorageReport(storage, True, False, f"pyarrow.fs cannot open it: {e}")
    what = {
        pafs.FileType.Directory: "exists",
        pafs.FileType.NotFound: "opens (path not created yet)",
    }.get(info.type, f"opens ({info.type.name})")
    return StorageReport(
        storage, True, True, f"{fs.type_name} URI {what}: shared by every node by construction"
    )
