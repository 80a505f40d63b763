"""A job's makespan on a cluster, simulated from estimated durations (pure).

A list scheduler in the spirit of Ray placing orch's placement groups: whenever GPUs free
up, the first queued trial that fits a node now starts there (all its GPUs on one node),
on the node where it finishes first. With `affinity`, a trial whose estimate on the
fastest free type is more than AFFINITY_WAIT times its estimate on the fastest type it
accepts waits for that type instead (GPU-type affinity: the longest trials are kept for
the fastest types).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.scheduling.cluster import NodeInfo
from orchestrator.scheduling.feasibility import fits
from orchestrator.spec.model import NodeType, TrialSpec

Duration = Callable[[TrialSpec, NodeInfo], "float | None"]
AFFINITY_WAIT = 1.5


def nodes_of(types: Sequence[NodeType]) -> list[NodeInfo]:
    """Every node a [cluster] section declares (count of each type)."""
    from orchestrator.scheduling.gputypes import slug

    return [
        NodeInfo(
            node_id=f"{t.name}-{i}",
            address=t.name,
            cpus=t.cpus,
            gpus=t.gpus,
            memory_gb=t.memory_gb or float("inf"),
            gpu_type=slug(t.gpu_type) if t.gpu_type else "cpu",
        )
        for t in types
        for i in range(t.count)
    ]


@dataclass
class _Node:
    info: NodeInfo
    gpus: float
    cpus: float


def _need(trial: TrialSpec) -> tuple[float, float]:
    return trial.resources.gpus, trial.resources.cpus


def simulate(
    queue: Sequence[TrialSpec],
    nodes: Sequence[NodeInfo],
    duration: Duration,
    *,
    affinity: bool = False,
) -> float:
    """Seconds until the last trial ends. Trials no node can ever hold are left out."""
    state = [_Node(n, n.gpus, n.cpus) for n in nodes]
    runnable = [t for t in queue if any(fits(t.resources, n) for n in nodes)]
    best = {id(t): _fastest(t, nodes, duration) for t in runnable} if affinity else {}
    # Trials with the same request are interchangeable for fitting: one queue per request,
    # so each event looks at a handful of queue heads, not the whole queue (10,000 trials).
    classes: dict[tuple, list[tuple[int, TrialSpec]]] = {}
    for index, t in enumerate(runnable):
        classes.setdefault((t.resources,), []).append((index, t))
    heads = {k: 0 for k in classes}
    running: list[tuple[float, int, _Node, float, float]] = []
    now, seq = 0.0, 0
    while True:
        started = True
        while started:
            started = False
            order = sorted((v[heads[k]][0], k) for k, v in classes.items() if heads[k] < len(v))
            for _, k in order:
                trial = classes[k][heads[k]][1]
                place = _place(trial, state, duration, best.get(id(trial)))
                if place is None:
                    continue
                node, seconds = place
                gpus, cpus = _need(trial)
                node.gpus -= gpus
                node.cpus -= cpus
                heapq.heappush(running, (now + seconds, seq, node, gpus, cpus))
                seq += 1
                heads[k] += 1
                started = True
                break
        if not running:
            return now
        now, _, node, gpus, cpus = heapq.heappop(running)
        node.gpus += gpus
        node.cpus += cpus


def _place(
    trial: TrialSpec, state: Sequence[_Node], duration: Duration, fastest: float | None
) -> tuple[_Node, float] | None:
    gpus, cpus = _need(trial)
    options = []
    for n in state:
        if n.gpus + 1e-9 >= gpus and n.cpus + 1e-9 >= cpus and fits(trial.resources, n.info):
            seconds = duration(trial, n.info)
            if seconds is not None:
                options.append((seconds, n))
    if not options:
        return None
    seconds, node = min(options, key=lambda o: o[0])
    if fastest is not None and seconds > AFFINITY_WAIT * fastest:
        return None  # wait for a faster type
    return node, seconds


def _fastest(trial: TrialSpec, nodes: Sequence[NodeInfo], duration: Duration) -> float | None:
    times = [duration(trial, n) for n in nodes if fits(trial.resources, n)]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def lower_bound(
    trials: Sequence[TrialSpec], nodes: Sequence[NodeInfo], duration: Duration
) -> float:
    """max(the longest trial on its fastest node, the GPU-seconds the GPU trials need at
    least (GPUs x time on their fastest type) over the cluster's GPUs, and the same for
    the CPU-only trials' core-seconds over its cores)."""
    longest, gpu_work, cpu_work = 0.0, 0.0, 0.0
    for t in trials:
        best = _fastest(t, nodes, duration)
        if best is None:
            continue
        longest = max(longest, best)
        if t.resources.gpus:
            gpu_work += best * t.resources.gpus
        else:
            cpu_work += best * t.resources.cpus
    gpus = sum(n.gpus for n in nodes)
    cpus = sum(n.cpus for n in nodes)
    return max(longest, gpu_work / gpus if gpus else 0.0, cpu_work / cpus if cpus else 0.0)
