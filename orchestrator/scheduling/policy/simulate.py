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
  where it finishes first;
- with `migrate` (a `migrate.Rule`), orch's moves of running trials to faster GPUs that
  freed up (`migrate.choose_moves`, which the Tune callback calls too), checked whenever
  GPUs free up and whenever a trial ends its first epoch on a type: a trial's speed is
  known from its first epoch there (its true epoch time, as orch's measured rate); the
  estimates of the other types come from `estimated`. A moved trial holds its new GPU
  from the decision, trains on its old one to the end of the epoch in progress, then
  restarts on the new one (`Rule.restart_s`) for the epochs left.
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
from orchestrator.scheduling.policy.gputypes import CPU, slug, type_matches
from orchestrator.scheduling.policy.migrate import Rule, Running, Waiting, choose_moves
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


@dataclass
class _Run:
    """A trial running on a node: its epochs from `base` on, one per `epoch_s` from
    `start`; `end` its last event (the end, or the stop before a move to `then`)."""

    trial: TrialSpec
    node: _Node
    start: float
    epoch_s: float
    base: int
    end: float
    then: _Node | None = None


def simulate(
    queue: Sequence[TrialSpec],
    nodes: Sequence[NodeInfo],
    duration: Duration,
    *,
    bind: Bind | None = None,
    pending: int = PENDING,
    reserved: Mapping[str, Iterable[str]] | None = None,
    placed: dict[str, str] | None = None,
    starts: dict[str, float] | None = None,
    migrate: Rule | None = None,
    estimated: Duration | None = None,
) -> float:
    """Seconds until the last trial of `queue` (in launch order) ends. Trials no node can
    ever hold are left out.

    bind: orch's `choose_types` unless given (asked once per trial shape, types kept off
    and free capacity: it must not otherwise depend on a trial's name or seed).
    reserved: types each trial is kept off, by key; orch's `order.reservations` of `queue`
    unless given ({}: none). placed: filled with the GPU type each trial ran on (its last,
    after a move); starts: with the second each trial started. migrate: move running
    trials to faster GPUs by this rule, judged on `estimated` (the cost model's estimates
    unless given) and each trial's measured epoch time."""
    from orchestrator.scheduling.policy.placement import choose_types, room_by_type

    if bind is None:
        bind = choose_types
    if reserved is None:  # orch's GPU-type affinity, from the estimates (order.py)
        from orchestrator.scheduling.policy.order import reservations

        reserved = reservations(queue, nodes)
    state = [_Node(n, n.gpus, n.cpus) for n in nodes]
    gpu_nodes = [n for n in state if n.info.gpus]
    runnable = [t for t in queue if any(fits(t.resources, n) for n in nodes)]
    # Created trials with the same request and binding are interchangeable for fitting: one
    # queue per (request, binding), so each event looks at a handful of queue heads, not at
    # every created trial (10,000-trial grids).
    classes: dict[tuple[Resources, tuple[str, ...] | None], list[tuple[int, TrialSpec]]] = {}
    heads: dict[tuple[Resources, tuple[str, ...] | None], int] = {}
    # (type, GPUs, CPUs) of each trial bound to one type, not yet running, by key
    promised: dict[str, tuple[str, float, float]] = {}
    running: list[tuple[float, int, int]] = []  # (time, seq, run id): an end or a check
    runs: dict[int, _Run] = {}
    now, created, waiting, finish = 0.0, 0, 0, 0.0
    memo: dict[tuple[object, ...], list[str] | None] = {}
    seq = itertools.count()
    per_epoch = None
    if migrate is not None:
        from orchestrator.scheduling.policy.order import by_cost_model

        per_epoch = _EpochEstimates(nodes, estimated or by_cost_model())

    def create() -> None:
        nonlocal created, waiting
        while waiting < pending and created < len(runnable):
            trial = runnable[created]
            types = None
            if trial.resources.gpus:
                here = {i: (n.info.gpu_type, n.gpus, n.cpus) for i, n in enumerate(gpu_nodes)}
                res = trial.resources
                free = room_by_type(here, promised.values(), res.cpus, res.gpus)
                # Seeds and names do not change a binding: a 10,000-trial grid asks once
                # per distinct trial and free capacity, not 10,000 times.
                kept_off = tuple(sorted(reserved.get(trial.key, ())))
                memo_key = (_placement_shape(trial), kept_off, tuple(sorted(free.items())))
                if memo_key not in memo:
                    memo[memo_key] = bind(trial, nodes, free, kept_off)
                types = memo[memo_key]
            if types and len(types) == 1:
                promised[trial.key] = (types[0], trial.resources.gpus, trial.resources.cpus)
            key = (trial.resources, tuple(types) if types else None)
            classes.setdefault(key, []).append((created, trial))
            heads.setdefault(key, 0)
            created += 1
            waiting += 1

    def launch(run: _Run) -> None:
        rid = next(seq)
        runs[rid] = run
        heapq.heappush(running, (run.end, next(seq), rid))
        if per_epoch is not None and run.trial.resources.gpus and run.start + run.epoch_s < run.end:
            heapq.heappush(running, (run.start + run.epoch_s, next(seq), rid))  # 1st epoch

    def moves() -> None:
        """orch's migration check (migrate.choose_moves) on the GPUs free now."""
        assert migrate is not None and per_epoch is not None
        free: dict[str, float] = {}
        for n in state:
            if n.info.gpus and n.gpus > 1e-9:
                free[n.info.gpu_type] = free.get(n.info.gpu_type, 0.0) + n.gpus
        if not free:
            return
        waits = {
            Waiting(t.resources.gpus, frozenset(k[1]) if k[1] else None)
            for k, v in classes.items()
            for _, t in v[heads[k] :]
            if t.resources.gpus
        }
        waits |= {Waiting(t.resources.gpus) for t in runnable[created:] if t.resources.gpus}
        live: dict[str, tuple[int, _Run]] = {}
        candidates = []
        for rid, run in runs.items():
            if run.then is not None or not run.trial.resources.gpus or run.end <= now:
                continue
            done = min(int((now - run.start) / run.epoch_s + 1e-9), run.trial.epochs - run.base)
            if now < run.start:
                done = 0
            here = run.node.info.gpu_type
            live[run.trial.key] = (rid, run)
            candidates.append(
                Running(
                    run.trial.key,
                    here,
                    run.trial.resources.gpus,
                    run.base + done,
                    run.trial.epochs,
                    per_epoch.of(run.trial),
                    run.epoch_s if done >= 1 else None,
                )
            )
        for move in choose_moves(candidates, free, waits, migrate):
            rid, run = live[move.key]
            target = _room_on(run.trial, move.to_type, state)
            if target is None:
                continue
            target.gpus -= run.trial.resources.gpus
            target.cpus -= run.trial.resources.cpus
            boundary = run.start + (move.after_epoch - run.base) * run.epoch_s
            run.then, run.end = target, boundary
            heapq.heappush(running, (boundary, next(seq), rid))

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
                if starts is not None:
                    starts[trial.key] = now
                gpus, cpus = trial.resources.gpus, trial.resources.cpus
                node.gpus -= gpus
                node.cpus -= cpus
                promised.pop(trial.key, None)
                launch(_Run(trial, node, now, seconds / max(1, trial.epochs), 0, now + seconds))
                heads[k] += 1
                waiting -= 1
                create()
                started = True
                break
        if migrate is not None:
            moves()
        if not running:
            return finish
        now, _, rid = heapq.heappop(running)
        run = runs.get(rid)
        if run is None or now < run.end:
            continue  # a first-epoch check, or the old end of a moved trial
        del runs[rid]
        finish = max(finish, now)
        node = run.node
        node.gpus += run.trial.resources.gpus
        node.cpus += run.trial.resources.cpus
        if run.then is not None:  # stopped after a checkpoint: resume on the faster GPU
            assert migrate is not None
            target, trial = run.then, run.trial
            done = run.base + round((now - run.start) / run.epoch_s)
            there = duration(trial, target.info)
            assert there is not None
            each = there / max(1, trial.epochs)
            start = now + migrate.restart_s
            if placed is not None:
                placed[trial.key] = target.info.gpu_type
            launch(_Run(trial, target, start, each, done, start + (trial.epochs - done) * each))


class _EpochEstimates:
    """A trial's estimated seconds per epoch on each GPU type of the cluster it fits,
    most preferred first (its gpu_type order, else fastest first), as the driver asks the
    cost model (one answer per trial shape)."""

    def __init__(self, nodes: Sequence[NodeInfo], estimated: Duration) -> None:
        self.sample = {n.gpu_type: n for n in nodes if n.gpus}
        self.estimated = estimated
        self.memo: dict[tuple[object, ...], dict[str, float]] = {}

    def of(self, trial: TrialSpec) -> dict[str, float]:
        shape = _placement_shape(trial)
        if shape not in self.memo:
            times = {}
            for t, n in self.sample.items():
                if fits(trial.resources, n) and (s := self.estimated(trial, n)) is not None:
                    times[t] = s / max(1, trial.epochs)
            wanted = trial.resources.gpu_type
            if wanted:
                order = [slug(w) for w in wanted]

                def rank(t: str) -> tuple[int, str]:
                    return (next(i for i, w in enumerate(order) if type_matches(t, (w,))), t)

                ranked = sorted((t for t in times if type_matches(t, order)), key=rank)
            else:
                ranked = sorted(times, key=lambda t: (times[t], t))
            self.memo[shape] = {t: times[t] for t in ranked}
        return self.memo[shape]


def _room_on(trial: TrialSpec, gpu_type: str, state: Sequence[_Node]) -> _Node | None:
    res = trial.resources
    for n in state:
        room = n.gpus + 1e-9 >= res.gpus and n.cpus + 1e-9 >= res.cpus
        if n.info.gpu_type == gpu_type and room and fits(res, n.info):
            return n
    return None


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
    trials: Sequence[TrialSpec],
    nodes: Sequence[NodeInfo],
    duration: Duration,
    *,
    whole: bool = True,
) -> float:
    """A makespan no schedule can beat, the largest of:

    - the longest trial on its fastest node;
    - the fluid bound: the GPU work split freely between types, each trial's share on a
      type costing its GPUs x its time there (`_fluid`); CPU-only trials: their
      core-seconds over the cluster's cores;
    - the slot bound: whole trials, each holding its GPUs (or its fraction of one) and its
      CPUs from start to end (`_slot_bound`): 30 trials on 24 places take two rounds on
      some places, which the fluid bound spreads as 1.25 rounds.

    The slot bound holds for schedules that run each trial on one place from start to
    end. A schedule that moves running trials (`simulate(..., migrate=...)`) can beat it
    (two equal trials, one fast and one slow GPU: the second moves to the fast GPU when
    the first ends); `whole=False` leaves it out, a bound for those schedules too.
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
    slot = _slot_bound(trials, nodes, duration) if whole else 0.0
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
