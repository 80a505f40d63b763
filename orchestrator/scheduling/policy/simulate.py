"""A job's makespan on a cluster, simulated from durations (pure), under the policy orch
runs, through the same functions:

- the launch order it is given (orch's: `order.longest_first`, which `submit` uses);
- each trial bound to GPU types when Tune creates it, by `placement.choose_types`, which
  the Tune callback calls (scheduling/adapters/placement.py): the most preferred type with
  free GPUs, counting those promised to bound trials not yet running; with none free,
  every acceptable type; a long trial kept off the slower types (`order.reservations`,
  GPU-type affinity, which the callback plans too). Tune creates trials ahead of launch, up
  to its pending limit (`PENDING`: Tune's own rule for a grid), so on most jobs every
  trial is bound at the start;
- Ray's placement: whenever GPUs free up, the first created trial (in launch order) whose
  bound types have room on one node starts there (all its GPUs on that node), on the node
  where it finishes first.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.feasibility import fits
from orchestrator.scheduling.policy.gputypes import CPU
from orchestrator.spec.model import Resources, TrialSpec

Duration = Callable[[TrialSpec, NodeInfo], "float | None"]
# (trial, nodes, free GPUs per type, types it is kept off) -> the types to bind it to;
# None: any node that fits.
Bind = Callable[
    [TrialSpec, Sequence[NodeInfo], Mapping[str, float], Iterable[str]], "list[str] | None"
]

# Trials Tune creates ahead of launch: for a grid, at least 200 (and 1.1 per cluster CPU).
PENDING = 200


@dataclass
class _Node:
    info: NodeInfo
    gpus: float
    cpus: float


def simulate(
    queue: Sequence[TrialSpec],
    nodes: Sequence[NodeInfo],
    duration: Duration,
    *,
    bind: Bind | None = None,
    pending: int = PENDING,
    reserved: Mapping[str, Iterable[str]] | None = None,
    placed: dict[str, str] | None = None,
) -> float:
    """Seconds until the last trial of `queue` (in launch order) ends. Trials no node can
    ever hold are left out.

    bind: orch's `choose_types` unless given (asked once per trial shape, types kept off
    and free capacity: it must not otherwise depend on a trial's name or seed).
    reserved: types each trial is kept off, by key; orch's `order.reservations` of `queue`
    unless given ({}: none). placed: filled with the GPU type each trial ran on."""
    if bind is None:
        from orchestrator.scheduling.policy.placement import choose_types

        bind = choose_types
    if reserved is None:  # orch's GPU-type affinity, from the estimates (order.py)
        from orchestrator.scheduling.policy.order import reservations

        reserved = reservations(queue, nodes)
    state = [_Node(n, n.gpus, n.cpus) for n in nodes]
    runnable = [t for t in queue if any(fits(t.resources, n) for n in nodes)]
    # Created trials with the same request and binding are interchangeable for fitting: one
    # queue per (request, binding), so each event looks at a handful of queue heads, not at
    # every created trial (10,000-trial grids).
    classes: dict[tuple[Resources, tuple[str, ...] | None], list[tuple[int, TrialSpec]]] = {}
    heads: dict[tuple[Resources, tuple[str, ...] | None], int] = {}
    promised: dict[str, float] = {}  # GPUs per type bound to one type, not yet running
    running: list[tuple[float, int, _Node, float, float]] = []
    now, created, waiting = 0.0, 0, 0
    memo: dict[tuple[object, ...], list[str] | None] = {}
    seq = itertools.count()

    def create() -> None:
        nonlocal created, waiting
        while waiting < pending and created < len(runnable):
            trial = runnable[created]
            types = None
            if trial.resources.gpus:
                free: dict[str, float] = {}
                for n in state:
                    if n.info.gpus:
                        free[n.info.gpu_type] = free.get(n.info.gpu_type, 0.0) + n.gpus
                for t, gpus in promised.items():
                    free[t] = free.get(t, 0.0) - gpus
                # Seeds and names do not change a binding: a 10,000-trial grid asks once
                # per distinct trial and free capacity, not 10,000 times.
                kept_off = tuple(sorted(reserved.get(trial.key, ())))
                memo_key = (_placement_shape(trial), kept_off, tuple(sorted(free.items())))
                if memo_key not in memo:
                    memo[memo_key] = bind(trial, nodes, free, kept_off)
                types = memo[memo_key]
            if types and len(types) == 1:
                promised[types[0]] = promised.get(types[0], 0.0) + trial.resources.gpus
            key = (trial.resources, tuple(types) if types else None)
            classes.setdefault(key, []).append((created, trial))
            heads.setdefault(key, 0)
            created += 1
            waiting += 1

    while True:
        create()
        started = True
        while started:
            started = False
            order = sorted((v[heads[k]][0], k) for k, v in classes.items() if heads[k] < len(v))
            for _, k in order:
                trial = classes[k][heads[k]][1]
                place = _place(trial, k[1], state, duration)
                if place is None:
                    continue
                node, seconds = place
                if placed is not None:
                    placed[trial.key] = node.info.gpu_type
                gpus, cpus = trial.resources.gpus, trial.resources.cpus
                node.gpus -= gpus
                node.cpus -= cpus
                if k[1] and len(k[1]) == 1:
                    promised[k[1][0]] -= gpus
                heapq.heappush(running, (now + seconds, next(seq), node, gpus, cpus))
                heads[k] += 1
                waiting -= 1
                create()
                started = True
                break
        if not running:
            return now
        now, _, node, gpus, cpus = heapq.heappop(running)
        node.gpus += gpus
        node.cpus += cpus


def _placement_shape(trial: TrialSpec) -> tuple[object, ...]:
    """What a binding depends on: the trial's cost and memory, and its request."""
    return (trial.model, trial.model_args, trial.data, trial.epochs, trial.batch_size,
            trial.recipe, trial.resources)  # fmt: skip


def _place(
    trial: TrialSpec,
    types: tuple[str, ...] | None,
    state: Sequence[_Node],
    duration: Duration,
) -> tuple[_Node, float] | None:
    """The node of the bound types with room now where the trial finishes first."""
    res = trial.resources
    options = []
    for n in state:
        if types is not None and n.info.gpu_type not in types:
            continue
        if n.gpus + 1e-9 >= res.gpus and n.cpus + 1e-9 >= res.cpus and fits(res, n.info):
            seconds = duration(trial, n.info)
            if seconds is not None:
                options.append((seconds, n))
    if not options:
        return None
    seconds, node = min(options, key=lambda o: o[0])
    return node, seconds


def lower_bound(
    trials: Sequence[TrialSpec], nodes: Sequence[NodeInfo], duration: Duration
) -> float:
    """A makespan no schedule can beat, the largest of:

    - the longest trial on its fastest node;
    - the fluid bound: the GPU work split freely between types, each trial's share on a
      type costing its GPUs x its time there (`_fluid`); CPU-only trials: their
      core-seconds over the cluster's cores;
    - the slot bound: whole trials, each holding its GPUs (or its fraction of one) and its
      CPUs from start to end (`_slot_bound`): 30 trials on 24 places take two rounds on
      some places, which the fluid bound spreads as 1.25 rounds.
    """
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
    slot = _slot_bound(trials, nodes, duration)
    return max(longest, cpu_work / cpus if cpus else 0.0, fluid, slot)


def slots(res: Resources, node: NodeInfo) -> int:
    """How many trials of request `res` a node runs at once, as `simulate` places them."""
    if not fits(res, node):
        return 0
    room = [
        math.floor(have / need + 1e-9)
        for have, need in ((node.gpus, res.gpus), (node.cpus, res.cpus))
        if need > 0
    ]
    return min(room) if room else 0


def _slot_bound(
    trials: Sequence[TrialSpec], nodes: Sequence[NodeInfo], duration: Duration
) -> float:
    """Whole trials on a limited number of places. Trials with the same request compete
    for the same places: on type k, `slots` summed over its nodes (S). If n of them run on
    type k, the q places that run the most of them run at least q x (n // S) + min(q,
    n % S) trials (the fewest when they are spread as evenly as can be), which take at
    least the sum of as many of the shortest trials on k, so one of those places is busy
    for that sum / q or more. q = 1: ceil(n / S) of the shortest trials end to end; q =
    n % S: the second round a remainder forces; q = S: the type's fluid share. A makespan
    T must let the types together take all the trials, each type counted with its own
    shortest (a relaxation, so still a bound). Other requests only take places away, so
    each request alone bounds the makespan, and so does the largest of these."""
    groups: dict[Resources, list[TrialSpec]] = {}
    for t in trials:
        groups.setdefault(t.resources, []).append(t)
    best = 0.0
    for res, members in groups.items():
        places: dict[str, int] = {}
        sample: dict[str, NodeInfo] = {}
        for n in nodes:
            k = n.gpu_type if res.gpus else CPU
            places[k] = places.get(k, 0) + slots(res, n)
            sample.setdefault(k, n)
        need = []  # per type: the least makespan at which n of the trials fit there
        sized: set[int] = set()  # trials of known duration somewhere (the others never run)
        for k, count in places.items():
            if count > 0:
                times = [(i, duration(t, sample[k])) for i, t in enumerate(members)]
                sized |= {i for i, d in times if d is not None}
                known = sorted(d for _, d in times if d is not None)
                need.append(_least_makespans(known, count))
        best = max(best, _split(need, len(sized)))
    return best


def _least_makespans(times: Sequence[float], places: int) -> list[float]:
    """[0, T(1), T(2), ...]: no schedule finishes n of these trials (durations ascending)
    on `places` places before T(n); nondecreasing in n."""
    prefix = [0.0]
    for d in times:
        prefix.append(prefix[-1] + d)
    out = [0.0]
    for n in range(1, len(times) + 1):
        whole, rest = divmod(n, places)
        out.append(
            max(prefix[q * whole + min(q, rest)] / q for q in {1, places, rest or places} if q <= n)
        )
    return out


def _split(need: Sequence[Sequence[float]], total: int) -> float:
    """The least T at which the types together can finish `total` trials; 0.0 when they
    cannot hold that many (trials that fit no node are left out of the simulation too)."""
    if sum(len(n) - 1 for n in need) < total:
        return 0.0
    candidates = sorted({v for n in need for v in n})

    def held(limit: float) -> int:
        return sum(bisect.bisect_right(n, limit) - 1 for n in need)

    lo, hi = 0, len(candidates) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if held(candidates[mid]) >= total else (mid + 1, hi)
    return candidates[lo]


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
