"""Moving a running trial to a faster GPU that has freed up (pure).

Near the end of a job the queue is empty, and a long trial that started on a slow type
(the fast ones were busy) would still run for hours there while a faster GPU sits idle.
orch then asks it to stop right after its next checkpoint (it checkpoints every epoch
when asked to stop, so no finished epoch is lost) and resumes it from that checkpoint on
the faster type. The move costs a restart (a fresh process: imports, data, model build;
`Rule.restart_s`) and gains the remaining epochs' difference in speed.

A move is made only when all hold:
- no waiting trial could use the freed GPU: a trial that has not started yet always
  comes first (it would otherwise wait for the slow GPU the move frees, later); other
  jobs' requests Ray has not placed yet (their pending placement groups,
  `waiting_of_group`) count as waiting trials too;
- the trial has trained at least one epoch on its current type, so its speed there is
  measured, not estimated: the time on the fast type is the cost model's estimate
  scaled by the measured / estimated ratio on the current one (the learned rate: the
  same model runs equally far off the estimate on both types);
- gain = (epochs left after the one in progress) x (its epoch time now - the fast
  type's) - restart_s exceeds both `min_gain_s` and `min_share` of that remaining time;
- the fast type ranks ahead of the current one among the types the trial accepts (its
  own gpu_type order when it names one, else fastest first): a user's stated preference
  is never overridden.

`scheduling/adapters/placement.py` (`Placement`) applies these moves in a live job;
`simulate.py` applies the same function in the makespan simulation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator.scheduling.policy.cluster import NodeInfo


@dataclass(frozen=True)
class Rule:
    """When a move is worth it. restart_s: a fresh trial process until its first step
    (imports, data, model build, restore); min_gain_s and min_share: the least gain, in
    seconds and as a share of the time left on the current type."""

    restart_s: float = 60.0
    min_gain_s: float = 600.0
    min_share: float = 0.1


@dataclass(frozen=True)
class Running:
    """A running trial as the driver sees it. epoch_s: the cost model's seconds per epoch
    on each type it may move to, most preferred first (its current type included);
    observed_epoch_s: its last epoch's measured seconds on its current type (None: no
    epoch there yet)."""

    key: str
    gpu_type: str
    gpus: float
    epochs_done: int
    epochs: int
    epoch_s: Mapping[str, float]
    observed_epoch_s: float | None = None


@dataclass(frozen=True)
class Waiting:
    """A trial not started yet: its GPUs and the types it may run on (None: any)."""

    gpus: float
    types: frozenset[str] | None = None


def waiting_of_group(
    bundles: Iterable[tuple[float, frozenset[str] | None]], *, one_node: bool
) -> list[Waiting]:
    """Another job's placement group Ray has not placed yet, as waiting trials: each bundle
    (its GPUs, the types it accepts) that asks for GPUs; with `one_node` (Ray's
    STRICT_PACK) one request for their sum, on a type every bundle accepts."""
    gpu = [(g, types) for g, types in bundles if g > 1e-9]
    if not one_node or len(gpu) <= 1:
        return [Waiting(g, types) for g, types in gpu]
    named = [types for _, types in gpu if types is not None]
    together = frozenset.intersection(*named) if named else None
    return [Waiting(sum(g for g, _ in gpu), together)]


def waiting_of_request(
    bundle: Mapping[str, float], count: int, nodes: Sequence[NodeInfo]
) -> list[Waiting]:
    """Another job's GPU task or actor Ray has not placed yet (`count` alike), as waiting
    trials: the types it names by a `gpu_type:<slug>` resource, else any. One that no node
    could ever hold waits for no freed GPU (Ray keeps it pending for good)."""
    from orchestrator.scheduling.policy.placement import request_types

    gpus = float(bundle.get("GPU", 0.0))
    if gpus <= 1e-9:
        return []
    types = request_types(bundle, {}, {n.gpu_type for n in nodes if n.gpus})
    if not any(n.gpus + 1e-9 >= gpus and (types is None or n.gpu_type in types) for n in nodes):
        return []
    return [Waiting(gpus, types)] * count


@dataclass(frozen=True)
class Move:
    key: str
    to_type: str
    gain_s: float
    after_epoch: int = field(default=0)  # it stops after this many epochs done


def left_after_next(trial: Running) -> int:
    """Epochs left once the epoch in progress ends (it ends on the current type)."""
    return max(0, trial.epochs - trial.epochs_done - 1)


def gain(trial: Running, to_type: str, rule: Rule) -> float | None:
    """Seconds the move saves, restart included; None when it cannot be judged (no epoch
    measured yet, a type without an estimate, or nothing left to move)."""
    now_s = trial.observed_epoch_s
    est_here = trial.epoch_s.get(trial.gpu_type)
    est_there = trial.epoch_s.get(to_type)
    left = left_after_next(trial)
    if now_s is None or not est_here or est_there is None or left <= 0:
        return None
    there_s = est_there * (now_s / est_here)  # the learned rate on the current type
    return left * (now_s - there_s) - rule.restart_s


def worth_it(trial: Running, to_type: str, rule: Rule) -> float | None:
    """The move's gain when it passes the rule's thresholds, else None."""
    g = gain(trial, to_type, rule)
    if g is None or trial.observed_epoch_s is None:
        return None
    remaining = left_after_next(trial) * trial.observed_epoch_s
    if g <= rule.min_gain_s or g <= rule.min_share * remaining:
        return None
    return g


def _preferred(trial: Running, to_type: str) -> bool:
    order = list(trial.epoch_s)
    if to_type not in order or trial.gpu_type not in order:
        return False
    return order.index(to_type) < order.index(trial.gpu_type)


def choose_moves(
    running: Sequence[Running],
    free: Mapping[str, float],
    waiting: Iterable[Waiting],
    rule: Rule,
) -> list[Move]:
    """Which running trials to move to which freed type, best gain first; each freed GPU
    goes to one trial at most, and none while a waiting trial could use it."""
    room = {t: g for t, g in free.items() if g > 1e-9}
    waits = list(waiting)

    def wanted(gpu_type: str) -> bool:
        return any(
            (w.types is None or gpu_type in w.types) and w.gpus <= room[gpu_type] + 1e-9
            for w in waits
        )

    moves: list[Move] = []
    left = list(running)
    while True:
        best: tuple[float, Running, str] | None = None
        for trial in left:
            for gpu_type, gpus in room.items():
                if gpus + 1e-9 < trial.gpus or not _preferred(trial, gpu_type):
                    continue
                if wanted(gpu_type):
                    continue
                g = worth_it(trial, gpu_type, rule)
                if g is not None and (best is None or g > best[0]):
                    best = (g, trial, gpu_type)
        if best is None:
            return moves
        g, trial, gpu_type = best
        moves.append(Move(trial.key, gpu_type, g, trial.epochs_done + 1))
        room[gpu_type] -= trial.gpus
        left.remove(trial)
