"""Binding each trial to GPU types when Tune creates it: preference, memory, and the types
it ran out of memory on.

Ray's label selectors accept a set of types, not an order. `gpu_type = ["A100", "V100"]`
means "an A100 if one is free, else a V100", so orch binds each trial, when Tune creates it
(Tune creates a trial only when it can queue it for resources, so close to its launch), to
the most preferred acceptable type with free GPUs, counting GPUs it already promised to
trials not yet running; with nothing free, to every acceptable type, whichever frees first.
"Any type" prefers the fastest by the cost model. Types whose memory cannot hold the
trial's estimated peak are never offered. A trial that runs out of GPU memory is retried on
acceptable types with more memory than the one it failed on, that type excluded.

The choice is pure (`choose_types`, `after_oom`); `Placement` is the Tune callback that
applies it through the trial's placement group factory.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.feasibility import fits_trial, gpu_memory, type_matches
from orchestrator.spec.model import TrialSpec

OOM_MARK = "orch: GPU out of memory on type "

try:  # the Tune callback base class; the pure functions need no Ray
    from ray.tune import Callback as _Callback
except ImportError:  # pragma: no cover
    _Callback = object  # type: ignore[assignment,misc]


class GpuOutOfMemory(RuntimeError):
    """Raised by a trial whose GPU ran out of memory; names the GPU type it ran on."""

    def __init__(self, gpu_type: str, detail: str) -> None:
        super().__init__(f"{OOM_MARK}{gpu_type}: {detail}"[:2000])
        self.gpu_type = gpu_type

    def __reduce__(self) -> tuple:
        return (GpuOutOfMemory, (self.gpu_type, str(self).split(": ", 1)[-1]))


def suitable_types(
    trial: TrialSpec, nodes: Sequence[NodeInfo], excluded: Iterable[str] = ()
) -> list[str]:
    """GPU types in `nodes` that can hold the trial (memory included), most preferred
    first: the order of the trial's gpu_type list, else fastest first."""
    skip = set(excluded)
    types = {n.gpu_type for n in nodes if n.gpus and fits_trial(trial, n, skip)}
    wanted = trial.resources.gpu_type
    if wanted:
        from orchestrator.scheduling.policy.gputypes import slug

        order = [slug(w) for w in wanted]
        rank = {t: next(i for i, w in enumerate(order) if type_matches(t, {w})) for t in types}
        return sorted(types, key=lambda t: (rank[t], t))
    from orchestrator.spec.cost import estimate

    def seconds(gpu_type: str) -> float:
        e = estimate(trial, gpu_type)
        return e.seconds if e else float("inf")

    return sorted(types, key=lambda t: (seconds(t), t))


def choose_types(
    trial: TrialSpec,
    nodes: Sequence[NodeInfo],
    free: Mapping[str, float],
    excluded: Iterable[str] = (),
) -> list[str] | None:
    """Label values to bind the trial to now; None to leave it unconstrained (one GPU type
    in the cluster, or a CPU trial)."""
    if not trial.resources.gpus:
        return None
    excluded = set(excluded)
    types = suitable_types(trial, nodes, excluded)
    every = sorted({n.gpu_type for n in nodes if n.gpus})
    if len(types) <= 1 and types == every and not excluded:
        return None  # one GPU type in the cluster: nothing to choose
    for t in types:
        if free.get(t, 0.0) + 1e-9 >= trial.resources.gpus:
            return [t]
    return types or None


def after_oom(
    trial: TrialSpec, nodes: Sequence[NodeInfo], failed_type: str, excluded: Iterable[str]
) -> list[str]:
    """Acceptable types with more memory per GPU than the one the trial ran out of memory
    on, that type and earlier failures excluded; [] when the cluster has none."""
    skip = {*excluded, failed_type}
    failed = max((gpu_memory(n) for n in nodes if n.gpu_type == failed_type), default=0.0)
    larger = [
        t
        for t in suitable_types(trial, nodes, skip)
        if max(gpu_memory(n) for n in nodes if n.gpu_type == t) > failed
    ]
    return larger


def oom_type(error_text: str) -> str | None:
    """The GPU type named by a GpuOutOfMemory in a trial's error text."""
    if OOM_MARK not in error_text:
        return None
    return error_text.split(OOM_MARK, 1)[1].split(":", 1)[0].strip() or None


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


class Placement(_Callback):  # type: ignore[misc]
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
            types = choose_types(trial, nodes, free, self.excluded.get(key, ()))
            if types and len(types) == 1:
                self.promised[key] = (types[0], trial.resources.gpus)
            self.bound[key] = types
        return types

    def resources(self, config: Mapping[str, Any]) -> Any:
        from orchestrator.scheduling.policy.resources import placement_group_factory

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

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A retried trial: if it ran out of GPU memory, rebind it to larger types."""
        from orchestrator.scheduling.policy.resources import placement_group_factory

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
