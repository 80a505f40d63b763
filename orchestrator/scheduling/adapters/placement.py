"""Binding each trial to GPU types when Tune creates it, through its placement group
factory, moving a trial that ran out of GPU memory, and moving a running trial to a faster
GPU that freed up (the Ray side).

The choices are pure (scheduling/policy/placement.py: `choose_types`, `after_oom`,
`stranded`, `move_fallback`; scheduling/policy/migrate.py: `choose_moves`);
`Placement` is the Tune callback that applies them, on what Ray has free and what other
jobs wait for (scheduling/adapters/capacity.py), and `placement_group_factory` turns a
request (scheduling/policy/resources.py) into Ray's placement group.

Tune 2.60 asks Ray for a trial's resources as soon as the trial is queued (orch lets it
queue up to 200), and `trial.update_resources` on a queued trial changes nothing of that
request by itself: orch's Tune scheduler (scheduling/adapters/requeue.py) cancels it and
queues the trial again with its new binding, so a rebinding in `on_step_end` takes effect
as one in `on_trial_recover` (before Tune queues the retry) does.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from orchestrator.failures import classify
from orchestrator.protocol import (
    EpochReport,
    FailureClass,
    Report,
    StopRequest,
    TuneStatus,
)
from orchestrator.scheduling.adapters.capacity import free_gpus_by_type, pending_elsewhere
from orchestrator.scheduling.adapters.control import Control
from orchestrator.scheduling.adapters.requeue import refile
from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.migrate import (
    Move,
    Rule,
    Running,
    Waiting,
    choose_moves,
)
from orchestrator.scheduling.policy.order import by_cost_model, reservations
from orchestrator.scheduling.policy.placement import (
    MOVE_GRACE_CHECKS,
    after_oom,
    choose_types,
    move_fallback,
    oom_type,
    room_by_type,
    stranded,
    suitable_types,
)
from orchestrator.scheduling.policy.profile import (
    MAX_SHARE,
    learned_seconds,
    plan_order,
    remaining,
    worth_profiling,
)
from orchestrator.scheduling.policy.resources import bundle, label_selector
from orchestrator.spec.model import Resources, TrialSpec

try:  # the Tune callback base class
    from ray.tune import Callback as _Callback
except ImportError:  # pragma: no cover
    _Callback = object  # type: ignore[assignment,misc]


def placement_group_factory(
    res: Resources, nodes: Sequence[NodeInfo] = (), types: Sequence[str] | None = None
) -> Any:
    from ray.tune import PlacementGroupFactory

    selector = label_selector(res, nodes, types)
    if selector is None:
        return PlacementGroupFactory([bundle(res)])
    return PlacementGroupFactory([bundle(res)], bundle_label_selector=[selector])


# Live Placement objects of this process, by token: Tune pickles the resources callable with
# the trainable and calls the unpickled copy, which must share the callback's state.
_LIVE: dict[str, Placement] = {}


class _Elsewhere:
    """What a Placement unpickles to outside the driver (a trial's worker unpickles the
    trainable and its resources callable with it): inert, as binding happens only in the
    driver."""

    def __init__(self, token: str) -> None:
        self.token = token

    def resources(self, config: Mapping[str, Any]) -> Any:
        raise RuntimeError("orch binds trials to GPU types in the driver only")


def _revive(token: str) -> Placement | _Elsewhere:
    return _LIVE.get(token) or _Elsewhere(token)


class Placement(_Callback):
    """Binds trials at creation (`resources`, for tune.with_resources), moves a trial
    that ran out of GPU memory (`on_trial_recover`) and, with a `migrate` rule, a running
    trial to a faster GPU that freed up (`on_step_end` asks it to stop after its next
    checkpoint through `control`; its run again is bound to that type, unless other work
    took that type meanwhile: `move_fallback`). `others` reads the GPU requests of other
    jobs waiting on the cluster (`pending_elsewhere`), asked only when a move is about to
    be made; `clock` is time.monotonic (tests pass their own).

    With `profile` (and a `migrate` rule), a job worth it (policy/profile.py) is profiled
    first: each trial stops after its first epochs, is held back from Tune's queue
    (`dispatch`, which orch's Tune scheduler calls: requeue.py) until every trial is
    measured, and the held trials are then bound again and queued in the order planned
    from their measured rates, with GPU-type affinity from the same measurements.

    It is also a sink of the parsed trial reports (`trial_result`...; tuner.py hands it to
    TuneEvents), for each running trial's epochs done, last epoch time and node."""

    def __reduce__(self) -> tuple:
        return (_revive, (self._token,))

    def __init__(
        self,
        specs: Mapping[str, TrialSpec],
        cluster_nodes: Callable[[], list[NodeInfo]],
        free: Callable[[Sequence[NodeInfo]], Mapping[str, float]] = free_gpus_by_type,
        *,
        control: Control | None = None,
        migrate: Rule | None = None,
        by_node: Callable[[Sequence[NodeInfo]], Mapping[str, tuple[float, float]]] | None = None,
        others: Callable[[Sequence[NodeInfo]], Iterable[Waiting]] | None = pending_elsewhere,
        clock: Callable[[], float] = time.monotonic,
        profile: bool = False,
        max_concurrent: int | None = None,
        profile_share: float = MAX_SHARE,
        learned: Mapping[str, float] | None = None,
    ) -> None:
        self.specs = specs
        self.control = control
        self.migrate = migrate if control is not None else None
        self.by_node = by_node  # None: every free GPU of a type counts as one place
        self.running: dict[str, EpochReport | None] = {}  # its last report of this run
        self.moving: dict[str, str] = {}  # key -> the type it moves to
        self.others = others  # None: other jobs' requests are not counted
        self.clock = clock
        # key -> (the one type a moved trial is bound to, since when): watched until it
        # starts, in case other work takes that type first (move_fallback)
        self.moved: dict[str, tuple[str, float]] = {}
        self._epoch_s: dict[str, dict[str, float]] = {}
        self.cluster_nodes = cluster_nodes
        self.free = free
        self.excluded: dict[str, set[str]] = {}
        self.promised: dict[str, tuple[str, float]] = {}  # key -> (type, gpus), not started
        self.bound: dict[str, list[str] | None] = {}
        # GPU-type affinity (policy/order.py), planned at the first binding on the nodes
        # then; `specs` are in launch order. A binding holds until the trial starts, unless
        # no node of its types is left to run it (on_step_end binds it again).
        self.reserved: dict[str, frozenset[str]] | None = None
        # Profiling (policy/profile.py): None until decided at the first binding.
        self.profile = profile and self.migrate is not None
        self.profiling: bool | None = None if self.profile else False
        self.max_concurrent = max_concurrent
        self.profile_share = profile_share
        # what orch measured before, by "family@gpu_type" (the ledger's): the estimates
        # behind affinity, profiling and moves use it, as the launch order does
        self.learned = dict(learned or {})
        self.measuring: set[str] = set()  # asked to stop once measured
        self.held: set[str] = set()  # measured and stopped: kept out of Tune's queue
        self.ended: set[str] = set()  # ended for good
        self.last_epoch: dict[str, EpochReport] = {}  # each trial's latest, across runs
        self.planned = False  # the plan from the measurements is made
        self._all_measured_at: float | None = None
        self.period_s = 2.0
        self.move_grace_s = MOVE_GRACE_CHECKS * self.period_s
        self._checked = 0.0
        self._lock = threading.Lock()
        self._token = uuid.uuid4().hex
        _LIVE[self._token] = self

    def _unpromised(self, nodes: Sequence[NodeInfo], but: str | None = None) -> dict[str, float]:
        """GPUs per type Ray has free now, less those promised to trials bound to one type
        and not started yet (`but`'s own promise excepted). Lock held."""
        free = dict(self.free(nodes))
        for other, (t, gpus) in self.promised.items():
            if other != but:
                free[t] = free.get(t, 0.0) - gpus
        return free

    def _room(self, nodes: Sequence[NodeInfo], key: str) -> dict[str, float]:
        """What a new trial could start on now, per type: with Ray's free resources per
        node (`by_node`), only GPUs on nodes that could hold it alone (room_by_type); else
        `_unpromised`. Lock held."""
        if self.by_node is None:
            return self._unpromised(nodes, but=key)
        type_of = {n.node_id: n.gpu_type for n in nodes if n.gpus}
        free = {nid: (type_of[nid], g, c) for nid, (g, c) in self.by_node(nodes).items()
                if nid in type_of}  # fmt: skip
        promised = [
            (t, gpus, self.specs[other].resources.cpus)
            for other, (t, gpus) in self.promised.items()
            if other != key and other in self.specs
        ]
        res = self.specs[key].resources
        return room_by_type(free, promised, res.cpus, res.gpus)

    def types_for(self, key: str) -> list[str] | None:
        trial = self.specs[key]
        nodes = [n for n in self.cluster_nodes() if n.source == "node"]
        with self._lock:
            # a CPU trial is never bound (choose_types): no need to ask Ray
            free = self._room(nodes, key) if trial.resources.gpus else {}
            if self.reserved is None:
                self.reserved = reservations(list(self.specs.values()), nodes, self.learned)
            if self.profiling is None:
                self.profiling = worth_profiling(
                    list(self.specs.values()),
                    nodes,
                    by_cost_model(self.learned),
                    self.migrate or Rule(),
                    max_concurrent=self.max_concurrent,
                    max_share=self.profile_share,
                )
            # While profiling, any GPU measures: affinity waits for the plan.
            reserved = {} if self.profiling and not self.planned else self.reserved
            kept_off = self.excluded.get(key, set()) | reserved.get(trial.key, set())
            types = choose_types(trial, nodes, free, kept_off)
            if types and len(types) == 1:
                self.promised[key] = (types[0], trial.resources.gpus)
            self.bound[key] = types
        return types

    def resources(self, config: Mapping[str, Any]) -> Any:
        key = config["trial_key"]
        return placement_group_factory(
            self.specs[key].resources, self.cluster_nodes(), self.types_for(key)
        )

    # -- sink of the parsed reports (events.TrialSink) ----------------------------------
    def trial_started(self, key: str) -> None:
        with self._lock:
            self.running[key] = None

    def trial_result(self, key: str, report: Report) -> None:
        if isinstance(report, EpochReport) and report.epoch_time_s is not None:
            with self._lock:
                if key in self.running:
                    self.running[key] = report
                self.last_epoch[key] = report
                measure = self.profiling and not self.planned and key not in self.measuring
                if measure:
                    self.measuring.add(key)
            if measure:
                self._stop_to_measure(key)

    def _stop_to_measure(self, key: str) -> None:
        """Profiling: ask the trial to stop after the epoch in progress (its first report
        came after its first epoch: the warm-up; the next one is the measurement)."""
        assert self.control is not None
        if self.control.stop_request(key) is not None:
            with self._lock:  # a cancel or another stop came first: it stands
                self.measuring.discard(key)
            return
        self.control.request_stop(
            key,
            failure_class=FailureClass.MIGRATED,
            reason=(
                "profiling: stops after its measured epoch and resumes once every trial "
                "is measured, in the order planned from the measurements"
            ),
        )

    def trial_completed(self, key: str, last: Report | None) -> None:
        self._ended(key)

    def trial_failed(
        self,
        key: str,
        message: str,
        *,
        will_retry: bool,
        failure_class: FailureClass = FailureClass.ERROR,
    ) -> None:
        with self._lock:
            self.running.pop(key, None)
            if will_retry and failure_class == FailureClass.MIGRATED and key in self.measuring:
                if not self.planned:
                    self.held.add(key)  # measured: waits for the plan
            elif will_retry:
                self.measuring.discard(key)  # failed before its measurement: measure its retry
        if not will_retry:
            self._ended(key)

    def _ended(self, key: str) -> None:
        """The trial's last run ended: a move asked of it too late (during its last epoch)
        is dropped, and its request with it."""
        with self._lock:
            self.running.pop(key, None)
            self.ended.add(key)
            dropped = self.moving.pop(key, None)
            if dropped is not None:
                self.promised.pop(key, None)
        dropped = dropped or (key if key in self.measuring else None)
        if dropped is not None and self.control is not None:
            request = StopRequest.from_dict(self.control.stop_request(key))
            if request is not None and request.failure_class == FailureClass.MIGRATED:
                self.control.clear(key)

    # -- Tune callback -------------------------------------------------------------------
    def _settled(self, trial: Any) -> None:
        with self._lock:
            self.promised.pop(trial.config.get("trial_key"), None)
            self.moved.pop(trial.config.get("trial_key"), None)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._settled(trial)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._settled(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._settled(trial)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        """Bind a waiting trial again when no node of its bound types can hold it any more
        (their nodes were lost, or the fast types a reservation kept it for are gone), to
        every acceptable type it was not moved off after an OOM; and a moved trial whose
        new type other work took (move_fallback)."""
        now = self.clock()
        if now - self._checked < self.period_s:
            return
        self._checked = now
        if self.migrate is not None and (not self.profiling or self.planned):
            self._moves(trials)
        if self.moved:
            self._fall_back(trials, now)
        waiting = [
            t
            for t in trials
            if t.status == TuneStatus.PENDING and self.bound.get(t.config.get("trial_key"))
        ]
        if not waiting:
            return
        nodes = [n for n in self.cluster_nodes() if n.source == "node"]
        for trial in waiting:
            key = trial.config["trial_key"]
            spec = self.specs[key]
            if not stranded(spec, nodes, self.bound[key]):
                continue
            types = choose_types(spec, nodes, {}, self.excluded.get(key, ()))
            if types is not None and set(types) <= set(self.bound[key] or ()):
                continue  # nothing else can hold it: the infeasible watchdog decides
            with self._lock:
                self.promised.pop(key, None)
                self.bound[key] = types
            trial.update_resources(placement_group_factory(spec.resources, nodes, types))

    def _moves(self, trials: list) -> None:
        """Ask running trials to move to faster GPUs free now (policy/migrate.py), when no
        trial waiting for a GPU could use them."""
        assert self.migrate is not None and self.control is not None
        nodes = [n for n in self.cluster_nodes() if n.source == "node"]
        with self._lock:
            if not self.running:
                return
            free = self._unpromised(nodes)
            if not any(g > 1e-9 for g in free.values()):
                return
            created = {t.config.get("trial_key"): t for t in trials}
            waiting = [
                Waiting(self.specs[k].resources.gpus, _types(self.bound.get(k)))
                for k, t in created.items()
                if k in self.specs and t.status == TuneStatus.PENDING and k not in self.moving
            ]
            # trials Tune has not created yet (the feeder hands them out a window at a time)
            waiting += [
                Waiting(spec.resources.gpus)
                for k, spec in self.specs.items()
                if k not in created and spec.resources.gpus
            ]
            type_of = {n.node_id: n.gpu_type for n in nodes if n.gpus}
            candidates = []
            for key, last in self.running.items():
                spec = self.specs.get(key)
                if spec is None or not spec.resources.gpus or key in self.moving:
                    continue
                here = type_of.get(last.node) if last is not None and last.node else None
                if last is None or here is None:
                    continue
                estimates = self._estimates(key, nodes)
                if here not in estimates:
                    continue
                candidates.append(
                    Running(
                        key,
                        here,
                        spec.resources.gpus,
                        last.epochs_done,
                        spec.epochs,
                        estimates,
                        last.epoch_time_s,
                    )
                )
            moves = choose_moves(candidates, free, waiting, self.migrate)
            if moves and self.others is not None:  # read only when a move is about to be made
                waiting += self.others(nodes)
                moves = choose_moves(candidates, free, waiting, self.migrate)
            if self.by_node is not None:
                moves = _placeable(moves, self.specs, nodes, dict(self.by_node(nodes)))
            for move in moves:
                self.moving[move.key] = move.to_type
                self.promised[move.key] = (move.to_type, self.specs[move.key].resources.gpus)
        for move in moves:
            if self.control.stop_request(move.key) is not None:
                with self._lock:  # a cancel or another stop came first: it stands
                    self.moving.pop(move.key, None)
                    self.promised.pop(move.key, None)
                continue
            self.control.request_stop(
                move.key,
                failure_class=FailureClass.MIGRATED,
                reason=(
                    f"moving to {move.to_type} after epoch {move.after_epoch}: saves about "
                    f"{move.gain_s / 60:.0f} min"
                ),
            )

    def _estimates(self, key: str, nodes: Sequence[NodeInfo]) -> dict[str, float]:
        """The cost model's seconds per epoch on each type the trial accepts, most
        preferred first (placement.suitable_types: memory, OOM exclusions, its order)."""
        if key not in self._epoch_s:
            from orchestrator.spec.cost import estimate

            spec = self.specs[key]
            out = {}
            for t in suitable_types(spec, nodes, self.excluded.get(key, ())):
                e = estimate(spec, t, learned=self.learned)
                if e is not None:
                    out[t] = e.seconds / max(1, spec.epochs)
            self._epoch_s[key] = out
        return self._epoch_s[key]

    def _bind(self, key: str, types: list[str] | None) -> None:
        """Bind a moved trial (lock held): the promise and the watch follow one type."""
        self.bound[key] = types
        self.promised.pop(key, None)
        self.moved.pop(key, None)
        if types and len(types) == 1:
            self.promised[key] = (types[0], self.specs[key].resources.gpus)
            self.moved[key] = (types[0], self.clock())

    def _fallback(
        self, key: str, target: str, nodes: Sequence[NodeInfo], waited_s: float
    ) -> list[str] | None:
        """move_fallback on what Ray has free now, less what is promised to other trials."""
        with self._lock:
            free = self._unpromised(nodes, but=key)
            excluded = set(self.excluded.get(key, ()))
        spec = self.specs[key]
        return move_fallback(spec, nodes, target, free, waited_s, self.move_grace_s, excluded)

    def _fall_back(self, trials: list, now: float) -> None:
        """Bind again a moved trial still waiting for its type past the grace, while other
        work holds that type and another acceptable type has room (move_fallback)."""
        nodes = [n for n in self.cluster_nodes() if n.source == "node"]
        for trial in trials:
            key = trial.config.get("trial_key")
            if trial.status != TuneStatus.PENDING or key not in self.moved:
                continue
            target, since = self.moved[key]
            types = self._fallback(key, target, nodes, now - since)
            if types is None:
                continue
            with self._lock:
                self._bind(key, types)
            trial.update_resources(placement_group_factory(self.specs[key].resources, nodes, types))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A retried trial: after a move, bind it to the type it moves to; if it ran out of
        GPU memory, to larger types."""
        key = trial.config.get("trial_key")
        if key not in self.specs:
            return
        with self._lock:
            if key in self.held:
                return  # profiled: bound when the plan is made (dispatch)
        nodes = self.cluster_nodes()
        text = _error_text(trial)
        with self._lock:
            target = self.moving.pop(key, None)
            if target is not None and classify(text) != FailureClass.MIGRATED:
                target = None  # it failed before it could move: a retry like any other
                self.promised.pop(key, None)
        if target is not None:
            # The binding takes effect only here (see the module's docstring): if other
            # work took the target during the trial's last epoch, go where there is room.
            node_list = [n for n in nodes if n.source == "node"]
            to = self._fallback(key, target, node_list, float("inf")) or [target]
            with self._lock:
                self._bind(key, to)
            trial.update_resources(placement_group_factory(self.specs[key].resources, nodes, to))
            return
        failed = oom_type(text)
        if failed is None:
            # Any other failure (a node lost, a process killed): the binding may name the
            # type whose only node just died, and Ray may still list that node as alive.
            # Offer every acceptable type again, so the retry runs on the first that frees.
            spec = self.specs[key]
            types = choose_types(spec, nodes, {}, self.excluded.get(key, ()))
            with self._lock:
                self.promised.pop(key, None)
                self.moved.pop(key, None)
                self.bound[key] = types
            trial.update_resources(placement_group_factory(spec.resources, nodes, types))
            return
        excluded = self.excluded.setdefault(key, set())
        larger = after_oom(self.specs[key], nodes, failed, excluded)
        excluded.add(failed)
        if larger:
            trial.update_resources(
                placement_group_factory(self.specs[key].resources, nodes, larger)
            )
            self.bound[key] = larger

    # -- profiling: orch's Tune scheduler asks before Tune queues trials (requeue.py) ------
    def dispatch(self, controller: Any) -> set[Any]:
        """The trials Tune must not queue yet: those measured while others are still being
        measured. Once every trial is measured or ended (and Ray has had `period_s` to
        free the last GPUs), plan: bind each held trial again, in the planned order, and
        put them at the head of Tune's queue in that order."""
        with self._lock:
            if not self.profiling or self.planned or not self.held:
                return set()
            waiting = [t for t in controller._pending_trials if _key(t) in self.held]
            if not all(k in self.held or k in self.ended for k in self.specs):
                self._all_measured_at = None
                return set(waiting)
            now = self.clock()
            if self._all_measured_at is None:
                self._all_measured_at = now
            if now - self._all_measured_at < self.period_s:
                return set(waiting)
        self._plan(controller, waiting)
        return set()

    def _plan(self, controller: Any, waiting: list[Any]) -> None:
        """Order the measured trials longest measured time left first, plan GPU-type
        affinity from the same measurements, and bind each in that order."""
        nodes = [n for n in self.cluster_nodes() if n.source == "node"]
        type_of = {n.node_id: n.gpu_type for n in nodes if n.gpus}
        left: dict[str, dict[str, float]] = {}
        with self._lock:
            for key in self.held:
                last = self.last_epoch.get(key)
                here = type_of.get(last.node) if last is not None and last.node else None
                if last is None or here is None or last.epoch_time_s is None:
                    continue
                epochs_left = self.specs[key].epochs - last.epochs_done
                estimates = self._estimates(key, nodes)
                left[key] = learned_seconds(estimates, here, last.epoch_time_s, epochs_left)
            done = {k: r.epochs_done for k, r in self.last_epoch.items() if k in self.held}
        rest = [remaining(self.specs[k], done.get(k, 0)) for k in self.specs if k in self.held]

        def fastest(trial: TrialSpec) -> float | None:
            times = left.get(trial.key)
            return min(times.values()) if times else None

        def duration(trial: TrialSpec, node: NodeInfo) -> float | None:
            return left.get(trial.key, {}).get(node.gpu_type)

        ordered = plan_order(rest, fastest)
        planned = reservations(ordered, nodes, duration=duration)
        with self._lock:
            self.reserved = planned
            self.planned = True
        by_key = {_key(t): t for t in waiting}
        queue = []
        for spec in ordered:
            trial = by_key.get(spec.key)
            if trial is None:
                continue
            old = trial.placement_group_factory
            trial.update_resources(self.resources(trial.config))
            refile(controller, trial, old)  # as Tune files a pending trial
            queue.append(trial)
        others = [t for t in controller._pending_trials_list if t not in by_key.values()]
        controller._pending_trials_list = queue + others
        with self._lock:
            self.held.clear()


def _key(trial: Any) -> str:
    return str(trial.config.get("trial_key"))


def _placeable(
    moves: Sequence[Move],
    specs: Mapping[str, TrialSpec],
    nodes: Sequence[NodeInfo],
    room: dict[str, tuple[float, float]],
) -> list[Move]:
    """The moves for which one node of the new type has the trial's GPUs and CPUs free,
    each taking its room in turn."""
    kept = []
    for move in moves:
        res = specs[move.key].resources
        for n in nodes:
            gpus, cpus = room.get(n.node_id, (0.0, 0.0))
            if n.gpu_type == move.to_type and gpus + 1e-9 >= res.gpus and cpus + 1e-9 >= res.cpus:
                room[n.node_id] = (gpus - res.gpus, cpus - res.cpus)
                kept.append(move)
                break
    return kept


def _types(bound: list[str] | None) -> frozenset[str] | None:
    return frozenset(bound) if bound else None


def _error_text(trial: Any) -> str:
    path = getattr(trial, "error_file", None)
    if not path:
        return ""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return ""
    return text.rsplit("Failure #", 1)[-1]  # Tune appends every failure: the latest one
