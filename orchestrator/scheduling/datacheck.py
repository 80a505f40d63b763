"""Before launch: can every node that may run a trial read (or fetch) its dataset?

One small Ray task per node (hard node affinity, num_cpus=0, like the storage probe of
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
from orchestrator.scheduling.cluster import NodeInfo
from orchestrator.scheduling.feasibility import fits_trial
from orchestrator.spec.model import TrialSpec

FILELESS = ("digits", "synthetic", "synthetic100")  # generated or bundled: nothing to check


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


def _probe(needs: list[tuple[str, str | None]]) -> list[tuple[bool, str, str]]:
    """Runs on the node: (ok, host, files or error) per dataset."""
    import socket

    from orchestrator.data.registry import dataset_files

    out = []
    for name, data_dir in needs:
        try:
            files = dataset_files(name, data_dir)
            out.append((True, socket.gethostname(), ", ".join(map(str, files))))
        except Exception as e:  # the message is the answer (DatasetError names the fix)
            out.append((False, socket.gethostname(), str(e)))
    return out


def check_nodes(
    trials: Sequence[TrialSpec], nodes: Sequence[NodeInfo], *, timeout_s: float = 600.0
) -> list[NodeData]:
    """Probe every node that may run one of `trials` (a fetch may take minutes: timeout)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    by_node = needs_by_node(trials, nodes)
    if not by_node:
        return []
    task = ray.remote(num_cpus=0, max_retries=0)(_probe)
    node_of = {n.node_id: n for n in nodes}
    plans = {
        nid: sorted(needs, key=lambda d: (d.dataset, d.data_dir or ""))
        for nid, needs in by_node.items()
    }
    refs = {
        nid: task.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(nid, soft=False)
        ).remote([(d.dataset, d.data_dir) for d in plan])
        for nid, plan in plans.items()
    }
    ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
    done = set(ready)
    out: list[NodeData] = []
    for nid, ref in refs.items():
        node, plan = node_of[nid], plans[nid]
        if ref not in done:
            ray.cancel(ref, force=True)
            out += [NodeData(node, "?", d, False, f"no answer in {timeout_s:.0f} s") for d in plan]
            continue
        try:
            answers = ray.get(ref)
        except Exception as e:  # the node died, or the task could not start there
            answers = [(False, "?", f"{type(e).__name__}: {e}")] * len(plan)
        out += [
            NodeData(node, h, d, ok, detail)
            for d, (ok, h, detail) in zip(plan, answers, strict=True)
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
        f"{'ok' if r.ok else 'MISSING'}  {r.need.dataset} on {where(r)}: {r.detail}"
        for r in results
    ]
