"""A job's makespan on a cluster, simulated from estimated durations (pure).

A list scheduler in the spirit of Ray placing orch's placement groups: whenever GPUs free
up, the first queued trial that fits a node now starts there (all its GPUs on one node),
on the node where it finishes first. With `affinity` (GPU-type affinity), a trial starts on
a free node only if no busy node of another type would finish it sooner once it frees up
(earliest finish time): long trials wait for the fast types, short ones fill the slow.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.feasibility import fits
from orchestrator.spec.model import TrialSpec

Duration = Callable[[TrialSpec, NodeInfo], "float | None"]


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
                place = _place(trial, state, duration, running, now if affinity else None)
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
    trial: TrialSpec,
    state: Sequence[_Node],
    duration: Duration,
    running: Sequence[tuple[float, int, _Node, float, float]],
    now: float | None,
) -> tuple[_Node, float] | None:
    """The free node where the trial finishes first; with `now` (affinity), None when a
    busy node would finish it sooner after it frees up."""
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
    if now is not None:
        for other in state:
            if other.gpus + 1e-9 >= gpus or not fits(trial.resources, other.info):
                continue
            later = duration(trial, other.info)
            free_at = _frees_at(other, gpus, running)
            if later is not None and free_at is not None and free_at - now + later < seconds:
                return None  # wait for the faster node
    return node, seconds


def _frees_at(
    node: _Node, gpus: float, running: Sequence[tuple[float, int, _Node, float, float]]
) -> float | None:
    """When `gpus` GPUs will be free on `node`, from its running trials' end times."""
    free = node.gpus
    for end, _, n, used, _ in sorted(running, key=lambda r: r[0]):
        if n is node:
            free += used
            if free + 1e-9 >= gpus:
                return end
    return None


def _fastest(trial: TrialSpec, nodes: Sequence[NodeInfo], duration: Duration) -> float | None:
    times = [duration(trial, n) for n in nodes if fits(trial.resources, n)]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def lower_bound(
    trials: Sequence[TrialSpec], nodes: Sequence[NodeInfo], duration: Duration
) -> float:
    """A makespan no schedule can beat: max(the longest trial on its fastest node, the
    fluid bound). Fluid: the GPU work split freely between types, each trial's share on a
    type costing its GPUs x its time there; with two GPU types the best split puts the
    trials that gain most from the faster type there first (exact for the relaxation).
    With more types, each trial counts at its fastest type (weaker, still valid). CPU-only
    trials: their core-seconds over the cluster's cores."""
    longest, cpu_work = 0.0, 0.0
    gpu_trials: list[tuple[TrialSpec, dict[str, float]]] = []
    for t in trials:
        times = {n.gpu_type: duration(t, n) for n in nodes if fits(t.resources, n)}
        known = {k: v for k, v in times.items() if v is not None}
        if not known:
            continue
        longest = max(longest, min(known.values()))
        if t.resources.gpus:
            gpu_trials.append((t, {k: v * t.resources.gpus for k, v in known.items()}))
        else:
            cpu_work += min(known.values()) * t.resources.cpus
    cpus = sum(n.cpus for n in nodes)
    capacity: dict[str, float] = {}
    for n in nodes:
        if n.gpus:
            capacity[n.gpu_type] = capacity.get(n.gpu_type, 0.0) + n.gpus
    fluid = _fluid(gpu_trials, capacity)
    return max(longest, cpu_work / cpus if cpus else 0.0, fluid, _counting(gpu_trials, capacity))


def _counting(
    jobs: Sequence[tuple[TrialSpec, dict[str, float]]], capacity: dict[str, float]
) -> float:
    """Whole trials: a GPU of type k runs at most floor(T / shortest one-GPU trial on k)
    one-GPU trials by time T, so T must let the cluster's GPUs finish all of them (the fluid
    bound ignores that 30 trials on 12 GPUs take three waves)."""
    single = [w for t, w in jobs if t.resources.gpus == 1]
    if not single:
        return 0.0
    shortest = {
        k: min(w[k] for w in single if k in w) for k in capacity if any(k in w for w in single)
    }

    def done_by(limit: float) -> float:
        return sum(capacity[k] * (limit // d) for k, d in shortest.items() if d > 0)

    low, high = 0.0, len(single) * max(shortest.values())
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (low, mid) if done_by(mid) >= len(single) else (mid, high)
    return high


def _fluid(jobs: Sequence[tuple[TrialSpec, dict[str, float]]], capacity: dict[str, float]) -> float:
    if not jobs or not capacity:
        return 0.0
    if len(capacity) != 2 or not all(len(w) == 2 for _, w in jobs):
        total = sum(capacity.values())
        return sum(min(w.values()) for _, w in jobs) / total
    a, b = sorted(capacity)
    # Binary search the smallest T for which the greedy split fits both types: type a takes
    # first the trials that cost least there relative to type b.
    ranked = sorted(jobs, key=lambda j: j[1][b] / j[1][a], reverse=True)

    def feasible(limit: float) -> bool:
        room = limit * capacity[a]
        load_b = 0.0
        for _, w in ranked:
            share = min(1.0, room / w[a]) if w[a] > 0 else 1.0
            room -= share * w[a]
            load_b += (1 - share) * w[b]
        return load_b <= limit * capacity[b] + 1e-9

    low, high = 0.0, sum(min(w.values()) for _, w in jobs) / min(capacity.values())
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (low, mid) if feasible(mid) else (mid, high)
    return high
