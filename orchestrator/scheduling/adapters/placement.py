"""Binding each trial to GPU types when Tune creates it, through its placement group
factory, and moving a trial that ran out of GPU memory (the Ray side).

The choices are pure (scheduling/policy/placement.py: `choose_types`, `after_oom`);
`Placement` is the Tune callback that applies them, `free_gpus_by_type` reads what Ray has
free now, and `placement_group_factory` turns a request (scheduling/policy/resources.py)
into Ray's placement group.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestrator.protocol import TuneStatus
from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.order import reservations
from orchestrator.scheduling.policy.placement import after_oom, choose_types, oom_type, stranded
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


def free_gpus_by_type(nodes: Sequence[NodeInfo]) -> dict[str, float]:
    """Unused GPUs per type now, from Ray's per-node available resources."""
    from ray._private.state import available_resources_per_node

    available = available_resources_per_node()
    out: dict[str, float] = {}
    for n in nodes:
        if n.gpus and n.node_id in available:
            out[n.gpu_type] = out.get(n.gpu_type, 0.0) + float(available[n.node_id].get("GPU", 0))
    return out


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
    """Binds trials at creation (`resources`, for tune.with_resources) and moves a trial
    that ran out of GPU memory (`on_trial_recover`)."""

    def __reduce__(self) -> tuple:
        return (_revive, (self._token,))

    def __init__(
        self,
        specs: Mapping[str, TrialSpec],
        cluster_nodes: Callable[[], list[NodeInfo]],
        free: Callable[[Sequence[NodeInfo]], Mapping[str, float]] = free_gpus_by_type,
    ) -> None:
        self.specs = specs
        self.cluster_nodes = cluster_nodes
        self.free = free
        self.excluded: dict[str, set[str]] = {}
        self.promised: dict[str, tuple[str, float]] = {}  # key -> (type, gpus), not started
        self.bound: dict[str, list[str] | None] = {}
        # GPU-type affinity (policy/order.py), planned at the first binding on the nodes
        # then; `specs` are in launch order. A binding holds until the trial starts, unless
        # no node of its types is left to run it (on_step_end binds it again).
        self.reserved: dict[str, frozenset[str]] | None = None
        self.period_s = 2.0
        self._checked = 0.0
        self._lock = threading.Lock()
        self._token = uuid.uuid4().hex
        _LIVE[self._token] = self

    def types_for(self, key: str) -> list[str] | None:
        trial = self.specs[key]
        nodes = [n for n in self.cluster_nodes() if n.source == "node"]
        with self._lock:
            free = dict(self.free(nodes)) if trial.resources.gpus else {}
            for other, (t, gpus) in self.promised.items():
                if other != key:
                    free[t] = free.get(t, 0.0) - gpus
            if self.reserved is None:
                self.reserved = reservations(list(self.specs.values()), nodes)
            kept_off = self.excluded.get(key, set()) | self.reserved.get(trial.key, set())
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

    # -- Tune callback -------------------------------------------------------------------
    def _settled(self, trial: Any) -> None:
        with self._lock:
            self.promised.pop(trial.config.get("trial_key"), None)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._settled(trial)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._settled(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._settled(trial)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        """Bind a waiting trial again when no node of its bound types can hold it any more
        (their nodes were lost, or the fast types a reservation kept it for are gone), to
        every acceptable type it was not moved off after an OOM."""
        now = time.monotonic()
        if now - self._checked < self.period_s:
            return
        self._checked = now
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

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A retried trial: if it ran out of GPU memory, rebind it to larger types."""
        key = trial.config.get("trial_key")
        if key not in self.specs:
            return
        failed = oom_type(_error_text(trial))
        nodes = self.cluster_nodes()
        if failed is None:
            # Any other failure (a node lost, a process killed): the binding may name the
            # type whose only node just died, and Ray may still list that node as alive.
            # Offer every acceptable type again, so the retry runs on the first that frees.
            spec = self.specs[key]
            types = choose_types(spec, nodes, {}, self.excluded.get(key, ()))
            with self._lock:
                self.promised.pop(key, None)
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
