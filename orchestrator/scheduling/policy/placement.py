"""Which GPU types a trial is bound to when Tune creates it, and where it goes after it ran
out of GPU memory (pure).

Ray's label selectors accept a set of types, not an order. `gpu_type = ["A100", "V100"]`
means "an A100 if one is free, else a V100", so orch binds each trial, when Tune creates it
(orch hands Tune its trials a window at a time, so a trial is created a little ahead of its
launch), to
the most preferred acceptable type with free GPUs, counting GPUs it already promised to
trials not yet running; with nothing free, to every acceptable type, whichever frees first.
"Any type" prefers the fastest by the cost model. Types whose memory cannot hold the
trial's estimated peak are never offered. A trial that runs out of GPU memory is retried on
acceptable types with more memory than the one it failed on, that type excluded. A trial
still waiting whose bound types have no node left that can hold it is bound again
(`stranded`), and so is a trial moved to a faster type (policy/migrate.py) that other work
took before it could start there while another acceptable type has room (`move_fallback`).

The trial names the type it ran out of memory on in its error (`GpuOutOfMemory`), and the
driver reads it back from Tune's error file (`oom_type`). `Placement`, the Tune callback
that applies these choices, is in scheduling/adapters/placement.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.feasibility import fits_trial, gpu_memory
from orchestrator.scheduling.policy.gputypes import LABEL, RESOURCE_PREFIX, slug, type_matches
from orchestrator.spec.model import TrialSpec

OOM_MARK = "orch: GPU out of memory on type "
# How many of Placement's checks (2 s apart) a moved trial may wait for the type it moves
# to before orch gives up on that type: Tune needs a step to release the old run and ask
# for the new one, and Ray's view of free GPUs lags by about a second, so the first check
# or two can see the target full with the trial about to take it. Past that, a target
# still full was taken by other work (another job, a user's task, a lost node).
MOVE_GRACE_CHECKS = 3


class GpuOutOfMemory(RuntimeError):
    """Raised by a trial whose GPU ran out of memory; names the GPU type it ran on."""

    def __init__(self, gpu_type: str, detail: str) -> None:
        super().__init__(f"{OOM_MARK}{gpu_type}: {detail}"[:2000])
        self.gpu_type = gpu_type

    def __reduce__(self) -> tuple[type[GpuOutOfMemory], tuple[str, str]]:
        return (GpuOutOfMemory, (self.gpu_type, str(self).split(": ", 1)[-1]))


def oom_type(error_text: str) -> str | None:
    """The GPU type named by a GpuOutOfMemory in a trial's error text."""
    if OOM_MARK not in error_text:
        return None
    return error_text.split(OOM_MARK, 1)[1].split(":", 1)[0].strip() or None


def suitable_types(
    trial: TrialSpec, nodes: Sequence[NodeInfo], excluded: Iterable[str] = ()
) -> list[str]:
    """GPU types in `nodes` that can hold the trial (memory included), most preferred
    first: the order of the trial's gpu_type list, else fastest first."""
    skip = set(excluded)
    types = {n.gpu_type for n in nodes if n.gpus and fits_trial(trial, n, skip)}
    wanted = trial.resources.gpu_type
    if wanted:
        order = [slug(w) for w in wanted]
        rank = {t: next(i for i, w in enumerate(order) if type_matches(t, (w,))) for t in types}
        return sorted(types, key=lambda t: (rank[t], t))
    from orchestrator.spec.cost import estimate

    def seconds(gpu_type: str) -> float:
        e = estimate(trial, gpu_type)
        return e.seconds if e else float("inf")

    return sorted(types, key=lambda t: (seconds(t), t))


def room_by_type(
    free: Mapping[Any, tuple[str, float, float]],
    promised: Iterable[tuple[str, float, float]],
    cpus: float,
    gpus: float = 0.0,
) -> dict[str, float]:
    """Free GPUs per type that a trial needing `gpus` GPUs and `cpus` CPUs could start
    on: `free` is each GPU node's (type, free GPUs, free CPUs) by node id; `promised` the
    (type, GPUs, CPUs) of trials bound to one type and not started yet, each taken from a
    node of its type that holds it (else from the type's first node). A node that cannot
    hold the trial alone (too few CPUs, or GPUs, left) offers none of its GPUs: Ray places
    a trial on one node, and a trial bound to a type with room only in pieces would wait
    there while another type idles."""
    types = [t for t, _, _ in free.values()]
    left = [[g, c] for _, g, c in free.values()]  # [GPUs, CPUs], in the order of `types`
    for t, g, c in promised:
        mine = [left[i] for i, ti in enumerate(types) if ti == t]
        fit = next((n for n in mine if n[0] + 1e-9 >= g and n[1] + 1e-9 >= c), None)
        if fit is None and mine:
            fit = mine[0]
        if fit is not None:
            fit[0] -= g
            fit[1] -= c
    out: dict[str, float] = {}
    for t, (g, c) in zip(types, left, strict=True):
        # an overdrawn node (promises beyond Ray's view) still counts against its type
        holds = c + 1e-9 >= cpus and g + 1e-9 >= gpus
        out[t] = out.get(t, 0.0) + (g if holds or g < 0 else 0.0)
    return out


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


def stranded(trial: TrialSpec, nodes: Sequence[NodeInfo], bound: Sequence[str] | None) -> bool:
    """A trial bound to GPU types of which no node in `nodes` can hold it: their nodes were
    lost, or it was kept for fast types that are gone. It must be bound again, or it waits
    forever while other types could run it."""
    if not bound:
        return False
    return not any(n.gpu_type in bound and fits_trial(trial, n, ()) for n in nodes if n.gpus)


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


def move_fallback(
    trial: TrialSpec,
    nodes: Sequence[NodeInfo],
    target: str,
    free: Mapping[str, float],
    waited_s: float,
    grace_s: float,
    excluded: Iterable[str] = (),
) -> list[str] | None:
    """Types to bind a trial to instead of `target`, the faster type it was moved to, when
    after `grace_s` it has not started there, the target has no room for it (other work
    took it: `free` counts GPUs promised to other trials as taken) and an acceptable type
    has room now: choose_types on the free capacity, its OOM exclusions kept. None: keep
    waiting for the target (within the grace, the target has room, or nothing else does)."""
    need = trial.resources.gpus
    if waited_s < grace_s or free.get(target, 0.0) + 1e-9 >= need:
        return None
    types = choose_types(trial, nodes, free, excluded)
    if not types or types == [target]:
        return None
    if not any(free.get(t, 0.0) + 1e-9 >= need for t in types):
        return None  # nothing has room: the target is as good a wait as any
    return types


def request_types(
    resources: Mapping[str, float], selector: Mapping[str, str], known: Iterable[str]
) -> frozenset[str] | None:
    """The GPU types a Ray resource request (a placement-group bundle) accepts, from its
    label selector on orch's GPU-type label ('a100', 'in(a100,v100)', '!t4', '!in(...)')
    or a `gpu_type:<slug>` resource; `known`: the cluster's GPU types, for a negation.
    None: any type (it names none)."""
    by_resource = {k[len(RESOURCE_PREFIX) :] for k in resources if k.startswith(RESOURCE_PREFIX)}
    value = selector.get(LABEL, "").strip()
    if not value:
        return frozenset(by_resource) if by_resource else None
    negated = value.startswith("!")
    value = value.lstrip("!")
    if value.startswith("in("):
        value = value[2:]
    values = {v.strip() for v in value.strip("()").split(",") if v.strip()}
    types = {t for t in known if t not in values} if negated else values
    return frozenset(types & by_resource if by_resource else types)
