"""Before launch: can every node that may run a trial read (or fetch) its dataset?

One small Ray task per node (`inventory.on_each_node`, as the storage probe of
`orch cluster check`) runs `data.registry.dataset_files` there, with the trial's data_dir:
it finds the files, or fetches them into that node's Keras cache when orch is online (so
the trials then find them), or answers with the error that names what is missing and
where it looked. `orch submit` turns any failure into ONE error naming the dataset, the
node and the fix, before a trial starts, instead of one failure per trial after launch;
`orch cluster check` prints the same per node (`describe`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import DatasetError
from orchestrator.scheduling.adapters.inventory import on_each_node
from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.feasibility import fits_trial
from orchestrator.spec.model import TrialSpec

FILELESS = ("digits", "synthetic", "synthetic100")  # generated or bundled: nothing to check
FETCHED = ("cifar10", "cifar100", "svhn")  # what `orch cluster check` looks for per node


@dataclass(frozen=True)
class DataNeed:
    dataset: str
    data_dir: str | None


@dataclass(frozen=True)
class NodeData:
    node: NodeInfo
    host: str
    need: DataNeed
    ok: bool
    detail: str  # the files found, or the error


def needs_by_node(trials: Sequence[TrialSpec], nodes: Sequence[NodeInfo]) -> dict[str, set]:
    """node id -> the datasets of the trials that node could run (pure)."""
    out: dict[str, set[DataNeed]] = {}
    for node in nodes:
        if not node.alive or node.source != "node":
            continue  # an autoscaler type is checked when its node exists
        wanted = {
            DataNeed(t.data.name, t.data.data_dir)
            for t in trials
            if t.data.name not in FILELESS and fits_trial(t, node)
        }
        if wanted:
            out[node.node_id] = wanted
    return out


def _probe(needs: list[tuple[str, str | None]], fetch: bool = True) -> list[tuple[bool, str, str]]:
    """Runs on the node: (ok, host, files or error) per dataset. fetch=False only looks:
    a dataset orch would download on first use counts as ok."""
    import socket

    from orchestrator.data.registry import NotFetchedYet, dataset_files

    out = []
    for name, data_dir in needs:
        try:
            files = dataset_files(name, data_dir, fetch=fetch)
            out.append((True, socket.gethostname(), ", ".join(map(str, files))))
        except NotFetchedYet as e:
            out.append((True, socket.gethostname(), str(e)))
        except Exception as e:  # the message is the answer (DatasetError names the fix)
            out.append((False, socket.gethostname(), str(e)))
    return out


def check_datasets(
    names: Sequence[str],
    nodes: Sequence[NodeInfo],
    *,
    data_dir: str | None = None,
    timeout_s: float = 60.0,
) -> list[NodeData]:
    """For `orch cluster check`: are these datasets on every alive node, or can they be
    fetched there? Looks only (downloads nothing)."""
    needs = {DataNeed(n, data_dir) for n in names if n not in FILELESS}
    by_node = {n.node_id: needs for n in nodes if n.alive and n.source == "node" and needs}
    return _run(by_node, nodes, timeout_s, fetch=False)


def check_nodes(
    trials: Sequence[TrialSpec], nodes: Sequence[NodeInfo], *, timeout_s: float = 600.0
) -> list[NodeData]:
    """Probe every node that may run one of `trials` (a fetch may take minutes: timeout)."""
    return _run(needs_by_node(trials, nodes), nodes, timeout_s, fetch=True)


def _run(
    by_node: dict[str, set], nodes: Sequence[NodeInfo], timeout_s: float, *, fetch: bool
) -> list[NodeData]:
    node_of = {n.node_id: n for n in nodes}
    plans = {
        nid: sorted(needs, key=lambda d: (d.dataset, d.data_dir or ""))
        for nid, needs in by_node.items()
    }
    calls = {nid: ([(d.dataset, d.data_dir) for d in plan], fetch) for nid, plan in plans.items()}
    answers = on_each_node(_probe, calls, timeout_s)
    out: list[NodeData] = []
    for nid, plan in plans.items():
        answered, value = answers[nid]
        per_need = value if answered else [(False, "?", value)] * len(plan)
        out += [
            NodeData(node_of[nid], h, d, ok, detail)
            for d, (ok, h, detail) in zip(plan, per_need, strict=True)
        ]
    return out


def where(r: NodeData) -> str:
    return f"node {r.host} ({r.node.address}, {r.node.node_id[:8]})"


def require(results: Sequence[NodeData]) -> None:
    """One DatasetError for every missing dataset, naming dataset, node and fix."""
    bad = [r for r in results if not r.ok]
    if not bad:
        return
    first = bad[0]
    others = len({(r.node.node_id, r.need) for r in bad}) - 1
    more = f" ({others} more node/dataset pair(s) fail the same way: `orch cluster check`)"
    raise DatasetError(
        f"dataset {first.need.dataset!r} cannot be read on {where(first)}, where trials may "
        f"run: {first.detail} Nothing was launched.{more if others else ''}"
    )


def describe(results: Sequence[NodeData]) -> list[str]:
    """One line per node and dataset, for `orch cluster check`."""
    return [
        f"dataset {r.need.dataset} on {where(r)}: {'ok' if r.ok else 'MISSING'}: {r.detail}"
        for r in results
    ]
