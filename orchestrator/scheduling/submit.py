"""`orch submit`: register the job, skip what is finished, run the rest on Ray.

Idempotent by content key: a trial whose key the ledger has FINISHED is skipped; an
unfinished one continues from its own last checkpoint (whatever Tune's experiment snapshot
says). One live driver per job: the ledger holds a lease with a heartbeat, so a second
submit of a running job is refused, and a submit after a dead driver takes over.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.config import Workspace, env_seconds
from orchestrator.ledger import FINISHED, Ledger, driver_id
from orchestrator.protocol import FailureClass, JobState, TrialState
from orchestrator.scheduling.adapters.control import Control
from orchestrator.spec.model import JobSpec
from orchestrator.training.checkpoint import CheckpointStore

if TYPE_CHECKING:  # events imports Ray Tune; a submit with nothing to run needs no Ray
    from orchestrator.scheduling.adapters.events import TrialSink

# A bad value is reported by config.workspace(), which every command calls first; here,
# at import time, it falls back to the default instead of crashing the import.
LEASE_TTL_S = env_seconds("ORCH_LEASE_TTL_S", 90.0, strict=False)
HEARTBEAT_S = LEASE_TTL_S / 6
INFEASIBLE_GRACE_S = env_seconds("ORCH_INFEASIBLE_GRACE_S", 120.0, strict=False)


@dataclass(frozen=True)
class SubmitOutcome:
    job: str
    skipped: tuple[str, ...]  # trial names already finished
    ran: tuple[str, ...]
    unfinished: tuple[str, ...]  # ran but did not finish (failed, diverged, cancelled)
    state: JobState = JobState.FINISHED  # the job's state as the driver left it

    @property
    def ok(self) -> bool:
        return not self.unfinished


class _Heartbeat(threading.Thread):
    """Keeps the driver's lease on the job fresh while Tune runs."""

    def __init__(self, ledger: Ledger, job: str, owner: str) -> None:
        super().__init__(daemon=True, name="orch-heartbeat")
        self.ledger, self.job, self.owner = ledger, job, owner
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(HEARTBEAT_S):
            # a database hiccup must not kill the driver; the next beat retries
            with contextlib.suppress(Exception):
                self.ledger.heartbeat(self.job, self.owner)


def submit(
    job: JobSpec,
    ws: Workspace,
    *,
    force: bool = False,
    address: str | None = None,
    sinks: Sequence[TrialSink] = (),
    spec_text: str | None = None,
    update: bool = False,
) -> SubmitOutcome:
    """Run `job`'s unfinished trials. A job of the same name with other trials in the
    ledger is refused (JobChangedError) unless `update`: then this spec replaces it."""
    ledger = Ledger(ws.ledger_url)
    known = ledger.job(job.name)
    changes = ledger.spec_changes(job) if known is not None else None
    if changes is not None and not update:
        raise spec_changed(job, known.spec_path if known else "?", *changes)
    ledger.register_job(job, spec_text)
    if update:
        ledger.drop_trials_not_in(job)
    owner = driver_id()
    previous = ledger.claim_job(job.name, owner, ttl_s=LEASE_TTL_S)
    heartbeat = _Heartbeat(ledger, job.name, owner)
    heartbeat.start()
    try:
        if previous is not None:  # its open attempts died with it; their trials resume
            ledger.close_open_attempts(
                job.name, FailureClass.DRIVER_LOST, f"driver {previous} died"
            )
        return _run(job, ws, ledger, force=force, address=address, sinks=sinks)
    except BaseException:
        # Refused or broken before the recorder ended the job (infeasible, a store that
        # fails, Ctrl-C): nothing runs any more, so the job must not stay RUNNING. It goes
        # back to its earlier state; a job that never ran is FAILED (its trials PENDING).
        with contextlib.suppress(Exception):
            view = ledger.job(job.name)
            if view is not None and view.state == JobState.RUNNING:
                before = known.state if known is not None else JobState.FAILED
                ledger.set_job_state(
                    job.name, JobState.FAILED if before == JobState.RUNNING else before
                )
        raise
    finally:
        heartbeat.done.set()
        ledger.release_job(job.name, owner)


def spec_changed(job: JobSpec, old_path: str, gone: list[str], added: list[str]) -> Exception:
    """Two files with one [job] name would merge their trials into one job, and the other
    file's trials would wait forever: say how they differ and what to do."""
    from orchestrator.errors import JobChangedError

    def names(xs: list[str]) -> str:
        shown = ", ".join(repr(x) for x in xs[:4])
        return shown + (f" and {len(xs) - 4} more" if len(xs) > 4 else "")

    diff = []
    if added:
        diff.append(f"{len(added)} trial(s) the ledger's job lacks ({names(added)})")
    if gone:
        diff.append(f"it lacks {len(gone)} unfinished trial(s) of the ledger's job ({names(gone)})")
    return JobChangedError(
        f"{job.path}: job {job.name!r} is already in the ledger with other trials (submitted "
        f"from {old_path}); this file has {' and '.join(diff)}. Give this file its own [job] "
        "name to keep the two apart, or submit with --update to make it the job's spec "
        "(unfinished trials only in the old spec leave the job; finished results and all "
        "checkpoints stay)."
    )


def _run(
    job: JobSpec,
    ws: Workspace,
    ledger: Ledger,
    *,
    force: bool,
    address: str | None,
    sinks: Sequence[TrialSink],
) -> SubmitOutcome:
    from orchestrator.stores import check_storage_writable
    from orchestrator.tracking.metrics import MetricsSink
    from orchestrator.tracking.mlflow_store import MlflowStore
    from orchestrator.tracking.prefill import RunPrefill
    from orchestrator.tracking.recorder import Recorder

    check_storage_writable(ws.storage)  # here first; each trial probes again on its node
    store = MlflowStore(ws.tracking_uri, ws.artifact_root)
    control = Control(ws.storage)
    done = set() if force else ledger.finished_keys(job.name)
    pending = [t for t in job.trials if t.key not in done]
    skipped = tuple(t.name for t in job.trials if t.key in done)
    if not pending:
        ledger.set_job_state(job.name, FINISHED)
        return SubmitOutcome(job.name, skipped, (), ())

    from orchestrator.scheduling.adapters.inventory import snapshot
    from orchestrator.scheduling.adapters.runtime import connect
    from orchestrator.scheduling.policy.feasibility import check_feasible, nodes_from_types
    from orchestrator.scheduling.policy.order import longest_first

    context = connect(address or ws.ray_address)
    for s in sinks:  # tell the display where to watch: the Ray dashboard
        if hasattr(s, "dashboard") and getattr(context, "dashboard_url", None):
            s.dashboard = f"http://{context.dashboard_url}"
    autoscalable = nodes_from_types(job.cluster)

    def cluster_nodes() -> list:
        return [*snapshot(), *autoscalable]

    nodes = cluster_nodes()
    check_feasible(pending, nodes)  # refuse an impossible job before anything runs
    from orchestrator.scheduling.adapters.datacheck import check_nodes, require

    # Every node that may run a trial reads (or fetches) its dataset: one error now, not
    # one failed trial per node after launch.
    require(check_nodes(pending, nodes))
    if force:  # only now: a refused --force must not have thrown finished work away
        keys = {t.key for t in job.trials}
        for key in keys:
            CheckpointStore(ws.storage, key).clear()
        exp_id = store.experiment_id(job.experiment_name)
        assert exp_id is not None
        store.delete_trial_runs(exp_id, keys)
        ledger.reset_trials(job.name, keys)
    learned = ledger.speeds()  # measured / estimated, by model family and GPU type
    pending = longest_first(pending, nodes, learned)
    for t in pending:
        control.clear(t.key)  # a cancel or give-up from an earlier submit no longer holds

    def waiting(what: str | None) -> None:  # a tracker or ledger outage: tell the display
        for s in sinks:
            if hasattr(s, "driver_waiting"):
                s.driver_waiting(what)

    recorder = Recorder(job, store, ledger, control, on_wait=waiting)
    # Every trial gets its MLflow run, so the table shows them all: a trial that starts
    # gets it then, the others from this thread once the first trial runs (prefill.py).
    prefill = RunPrefill(recorder.run_id, [t.key for t in pending])
    prefill.start()
    from orchestrator.scheduling.adapters.tuner import run_trials

    try:
        # Prometheus series for Grafana next to Ray's own (dashboards/grafana/orch.json).
        metrics = MetricsSink(job, finished=done)
        run_trials(
            job,
            pending,
            ws.storage,
            [recorder, metrics, prefill, *sinks],
            cluster_nodes=cluster_nodes,
            infeasible_grace_s=INFEASIBLE_GRACE_S,
            learned=learned,
        )
    finally:
        prefill.stop()
        view = ledger.job(job.name)
        states = {t.key: t.state for t in view.trials} if view is not None else {}
        unfinished = tuple(t.name for t in pending if states.get(t.key) != FINISHED)
        state = final_state(states.get(t.key) for t in pending)
        recorder.job_finished(state)
    return SubmitOutcome(job.name, skipped, tuple(t.name for t in pending), unfinished, state)


def final_state(states: Iterable[str | None]) -> JobState:
    """A job's state once its driver is done, from the states its trials ended in: a job
    someone cancelled is CANCELLED (as `orch cancel` records it when no driver is left),
    even if a trial had failed before; any other unfinished trial makes it FAILED."""
    ended = set(states)
    if ended <= {FINISHED}:
        return JobState.FINISHED
    return JobState.CANCELLED if TrialState.CANCELLED in ended else JobState.FAILED


__all__ = ["FINISHED", "SubmitOutcome", "submit"]
