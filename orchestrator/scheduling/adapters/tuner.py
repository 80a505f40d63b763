"""Runs a job's pending trials as one Ray Tune experiment, one Tune trial per TrialSpec."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.protocol import (
    EndKind,
    FailureClass,
    Report,
    StopRequest,
    TrialEnd,
    TrialMigratedError,
)
from orchestrator.scheduling.adapters.capacity import free_by_node
from orchestrator.scheduling.adapters.control import Control
from orchestrator.scheduling.adapters.events import TrialSink, TuneEvents
from orchestrator.scheduling.adapters.placement import Placement
from orchestrator.scheduling.adapters.searcher import NAME, KeyFeeder
from orchestrator.scheduling.adapters.watchdog import InfeasibleWatchdog
from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.gputypes import LABEL
from orchestrator.scheduling.policy.placement import GpuOutOfMemory
from orchestrator.scheduling.rules import migration_rule, profile_share
from orchestrator.spec.model import JobSpec, TrialSpec


# Exceptions that say something about the machine, not the trial: Tune retries them.
def _infrastructure_errors() -> tuple[type[BaseException], ...]:
    import tensorflow as tf

    return (
        OSError,
        MemoryError,
        tf.errors.ResourceExhaustedError,
        tf.errors.UnavailableError,
        tf.errors.InternalError,
    )


def orch_trial(config: dict[str, Any], specs: dict[str, TrialSpec], storage: str) -> None:
    """Body of every Tune trial: a fresh process (reuse_actors=False) that trains one spec.

    It resumes from the trial's own keyed checkpoint, so a retry after a node loss or a
    resubmit after a driver crash continues where the last checkpoint left off. A
    deterministic error (bad data path, a bug) is reported once as a final result and
    not raised: Tune would retry it into the ground. Machine trouble is raised, and Tune
    retries it on any suitable node.
    """
    import ray
    from ray import tune

    from orchestrator.training.loop import run_trial

    trial = specs[config["trial_key"]]
    node_id = ray.get_runtime_context().get_node_id()
    control = Control(storage)
    if (stop := StopRequest.from_dict(control.stop_request(trial.key))) is not None:
        if stop.failure_class != FailureClass.MIGRATED:
            tune.report(stop.end().to_dict())
            return
        control.clear(trial.key)  # a move already made (or dropped): this run trains
    from orchestrator.stores import check_storage_writable

    # Before any epoch: an unwritable mount on this node fails now, not at the first
    # checkpoint. It raises an OSError, so Tune retries the trial on another node.
    check_storage_writable(storage, where=f" on node {node_id[:12]}")
    moved: list[TrialEnd] = []

    def report(r: Report) -> None:
        if isinstance(r, TrialEnd) and r.failure_class == FailureClass.MIGRATED:
            moved.append(r)  # not an end: raised below, so that Tune runs it again
            return
        tune.report(r.to_dict())  # the one place a report is a dict

    try:
        run_trial(
            trial,
            storage=storage,
            node_id=node_id,
            report=report,
            should_stop=lambda: StopRequest.from_dict(control.stop_request(trial.key)),
        )
    except _infrastructure_errors() as e:
        if _is_gpu_oom(e):  # name the type, so the retry can go to a larger one
            label = ray.get_runtime_context().get_node_labels().get(LABEL) or "unknown"
            label = label[0] if isinstance(label, list) else label
            raise GpuOutOfMemory(str(label), str(e)) from e
        raise
    except Exception as e:
        message = f"{type(e).__name__}: {e}"[:2000]
        tune.report(TrialEnd(EndKind.FAILED, FailureClass.CODE_ERROR, message).to_dict())
        return
    # A move to a faster GPU (scheduling/policy/migrate.py): stopped after the checkpoint
    # of epoch `epochs_done`; the error makes Tune run it again, which the driver binds to
    # the new type, and which resumes from that checkpoint. A request that came too late
    # (the last epoch) is dropped.
    request = StopRequest.from_dict(control.stop_request(trial.key))
    if request is not None and request.failure_class == FailureClass.MIGRATED:
        control.clear(trial.key)
    if moved:
        raise TrialMigratedError(moved[0].message)


def _is_gpu_oom(error: BaseException) -> bool:
    import tensorflow as tf

    return isinstance(error, tf.errors.ResourceExhaustedError) and "GPU" in str(error)


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "trial"


def run_trials(
    job: JobSpec,
    trials: Sequence[TrialSpec],
    storage: str,
    sinks: Sequence[TrialSink],
    *,
    cluster_nodes: Callable[[], list[NodeInfo]],
    infeasible_grace_s: float = 120.0,
    learned: Mapping[str, float] | None = None,
) -> None:
    """Run `trials` in the given order (the caller sorts them) and block until all end.
    `learned`: the ledger's measured / estimated ratios, for the estimates Placement uses."""
    # Tune's own console output would fight orch's live display; with the legacy
    # reporter and verbose=0 it prints nothing.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    from ray import tune

    from orchestrator.scheduling.adapters.requeue import Requeue
    from orchestrator.scheduling.adapters.withdraw import Withdraw

    specs = {t.key: t for t in trials}
    trainable = tune.with_parameters(orch_trial, specs=specs, storage=storage)
    # Each trial is bound to GPU types when Tune creates it: its preference order, memory,
    # and after an OOM the larger types; with the job's `migrate` (on by default), a
    # running trial moves to a faster GPU that freed up (scheduling/adapters/placement.py).
    placement = Placement(
        specs,
        cluster_nodes,
        control=Control(storage),
        migrate=migration_rule() if job.migrate else None,
        by_node=free_by_node,
        # profile first when worth it (policy/profile.py): the same switch as moves
        profile=job.migrate,
        max_concurrent=job.max_concurrent,
        profile_share=profile_share(),
        learned=learned,
    )
    trainable = tune.with_resources(trainable, resources=placement.resources)
    # The job's max_concurrent is the feeder's to enforce (searcher.py).
    feeder = KeyFeeder([(t.key, safe_name(t.name)) for t in trials], job.max_concurrent)
    # Placement hears of a trial given up too: a profiled job plans once every trial is
    # measured or ended, and one that can never run is never measured.
    watchdog = InfeasibleWatchdog(
        specs,
        Control(storage),
        [*sinks, placement],
        cluster_nodes,
        grace_s=infeasible_grace_s,
        feeder=feeder,
    )
    events = TuneEvents([*sinks, placement])
    # A waiting trial asked to stop (a cancel, its retry budget spent) ends in the driver,
    # unstarted, instead of taking a GPU and a process just to end (withdraw.py).
    withdraw = Withdraw(Control(storage), events.withdrawn)
    tuner = tune.Tuner(
        trainable,
        # No param_space: each trial's config is its key and name, handed out by the
        # feeder in launch order (the planner sorts `trials` beforehand) as Tune asks.
        tune_config=tune.TuneConfig(
            search_alg=feeder,
            # FIFO, a waiting trial that Placement binds again is asked for again, and
            # a profiled job's trials wait for their plan (Placement.dispatch)
            scheduler=Requeue(placement, withdraw),
            num_samples=len(trials),
            reuse_actors=False,  # a fresh process per trial: TF state and GPU memory
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            # A new Tune experiment per submit: orch resumes from its own keyed
            # checkpoints, never from Tune's experiment snapshot.
            name=f"{safe_name(job.name)}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=str(Path(storage, "tune").absolute())
            if "://" not in storage
            else f"{storage.rstrip('/')}/tune",
            callbacks=[events, watchdog, placement],
            stop=watchdog,
            verbose=0,
            # Tune retries every failure; the recorder enforces each trial's own budget
            # (infrastructure failures excluded) through stop requests.
            failure_config=tune.FailureConfig(max_failures=-1),
        ),
    )
    with _pending_limit(_max_pending()):
        tuner.fit()


def _trial_name(trial: Any) -> str:
    return str(trial.config[NAME])


def _trial_dirname(trial: Any) -> str:
    return f"{trial.config[NAME]}-{trial.trial_id}"


def _max_pending() -> int:
    """How many trials Tune creates ahead of launch (it asks the feeder for that many):
    Tune's own rule for a grid, at least 200 and 1.1 per cluster CPU. For a searcher it
    would allow one, and trials would start one at a time."""
    import ray

    return max(200, int(float(ray.cluster_resources().get("CPU", 1.0)) * 1.1))


@contextlib.contextmanager
def _pending_limit(limit: int) -> Iterator[None]:
    """Tune reads its pending-trial limit from the environment when fit() starts; set it
    for this fit only, unless the user has set it."""
    name = "TUNE_MAX_PENDING_TRIALS_PG"
    if name in os.environ:
        yield
        return
    os.environ[name] = str(limit)
    try:
        yield
    finally:
        os.environ.pop(name, None)
