"""The ledger's only door: a small repository over SQLAlchemy sessions.

The ledger is orch's own record of jobs and trial states. It decides what `submit` skips
(finished trials, by content key) and feeds `orch status`. MLflow stays the record of
metrics; the ledger never holds a metric MLflow does not also have.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import event, or_, select, update
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import JobBusyError, LedgerError
from orchestrator.ledger.migrations import upgrade
from orchestrator.ledger.models import AttemptRow, JobRow, SpeedRow, TrialRow, utcnow
from orchestrator.ledger.reconnect import retrying
from orchestrator.protocol import TERMINAL_STATES, JobState, TrialState
from orchestrator.spec.model import JobSpec
from orchestrator.stores import ledger_engine, ledger_exists, redact

FINISHED = TrialState.FINISHED
TERMINAL = TERMINAL_STATES


@dataclass(frozen=True)
class TrialView:
    """A detached, read-only copy of a trial row, for display."""

    job: str
    key: str
    name: str
    model: str
    state: str
    epochs_done: int
    epochs_total: int
    last_accuracy: float | None
    test_accuracy: float | None
    node: str | None
    gpu: str | None
    attempts: int
    error: str | None
    mlflow_run_id: str | None
    updated_at: datetime
    epoch_time_s: float | None = None
    train_time_s: float | None = None
    lost_time_s: float = 0.0
    counted_failures: int = 0


@dataclass(frozen=True)
class JobView:
    name: str
    spec_path: str
    experiment: str
    state: str
    created_at: datetime
    updated_at: datetime
    mlflow_run_id: str | None
    trials: tuple[TrialView, ...]
    owner: str | None = None
    heartbeat_at: datetime | None = None
    ray_job_id: str | None = None
    ray_address: str | None = None
    spec_text: str | None = None
    waiting_for: str | None = None  # what the live driver waits for (a tracker outage)


class Ledger:
    def __init__(self, url: str, *, create: bool = True) -> None:
        """create=False (commands that only read): a SQLite ledger that does not exist yet
        reads as an empty one, and no file or folder is made for it."""
        self.url = url
        if not create and not ledger_exists(url):
            url = "sqlite://"  # empty, in memory: every read answers "no jobs"
        self.engine = ledger_engine(url)  # a bad URL, driver or file is a LedgerError here
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            upgrade(self.engine)  # creates tables; adds columns older databases lack
        except DatabaseError as e:  # also a file that is no database ("file is not a ...")
            reason = (str(e.orig).strip().splitlines() or [type(e.orig).__name__])[0]
            fix = (
                "Another process holds a lock on it (an orch submit that is writing, or a "
                "tool with a transaction open): wait for it to finish, or stop it."
                if "locked" in reason or "busy" in reason
                else "If the file is damaged, restore it from a backup or move it away "
                "(finished trials would train again)."
                if url.startswith("sqlite")
                else "Check that the database server runs there and that host, port, user "
                "and database in ORCH_LEDGER_URL are right."
            )
            where = redact(self.url)
            raise LedgerError(f"cannot open the ledger at {where}: {reason}. {fix}") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # -- jobs ---------------------------------------------------------------------------
    def register_job(self, job: JobSpec, spec_text: str | None = None) -> None:
        """Create or refresh a job and its trials. Existing trials keep their state."""
        try:
            self._register(job, spec_text)
        except IntegrityError:  # another process registered it at the same moment
            self._register(job, spec_text)

    def _register(self, job: JobSpec, spec_text: str | None) -> None:
        with self.session() as s:
            row = s.scalar(select(JobRow).where(JobRow.name == job.name))
            if row is None:
                row = JobRow(name=job.name, spec_path=job.path, experiment=job.experiment_name)
                s.add(row)
                s.flush()
            row.spec_path, row.experiment = job.path, job.experiment_name
            if spec_text is not None:
                row.spec_text = spec_text
            existing = {t.key: t for t in row.trials}
            for pos, trial in enumerate(job.trials):
                t = existing.get(trial.key)
                if t is None:
                    t = TrialRow(key=trial.key, job_id=row.id, epochs_done=0, attempts=0)
                    row.trials.append(t)
                t.name, t.model, t.position = trial.name, trial.model, pos
                t.epochs_total = trial.epochs

    def set_waiting(self, name: str, what: str | None) -> None:
        """What the job's driver is waiting for (None: nothing), for `orch status`."""
        with self.session() as s:
            self._job(s, name).waiting_for = what[:1000] if what else None

    def spec_changes(self, job: JobSpec) -> tuple[list[str], list[str]] | None:
        """How `job` differs from the job of the same name in the ledger: (names of its
        unfinished trials the new spec lacks, names of new trials), or None when the
        ledger has no such job or the same trials (same content keys)."""
        with self.session() as s:
            row = s.scalar(select(JobRow).where(JobRow.name == job.name))
            if row is None:
                return None
            old = {t.key: (t.name, t.state) for t in row.trials}
        new = {t.key: t.name for t in job.trials}
        gone = [name for key, (name, state) in old.items() if key not in new and state != FINISHED]
        added = [name for key, name in new.items() if key not in old]
        return (gone, added) if gone or added else None

    def drop_trials_not_in(self, job: JobSpec) -> list[str]:
        """--update: the job's unfinished trials that `job` no longer has leave the job
        (their checkpoints stay in storage, keyed by content). Finished ones stay: they
        are results. Returns the names dropped."""
        keep = {t.key for t in job.trials}
        dropped = []
        with self.session() as s:
            row = self._job(s, job.name)
            for t in list(row.trials):
                if t.key not in keep and t.state != FINISHED:
                    dropped.append(t.name)
                    row.trials.remove(t)
        return dropped

    def set_job_state(self, name: str, state: str, *, mlflow_run_id: str | None = None) -> None:
        with self.session() as s:
            row = self._job(s, name)
            row.state = state
            if mlflow_run_id:
                row.mlflow_run_id = mlflow_run_id

    # -- the driver lease -----------------------------------------------------------------
    def claim_job(self, name: str, owner: str, ttl_s: float = 90.0) -> str | None:
        """Become the job's only driver. Returns the previous owner if it took over a dead
        one (whose trials then need cleaning up), None otherwise. Raises JobBusyError when
        a live driver holds the job: its heartbeat is fresh and, on this host, its pid runs.

        One conditional UPDATE decides, so two drivers racing cannot both win (SQLite and
        PostgreSQL alike)."""
        with self.session() as s:
            row = self._job(s, name)
            previous, beat = row.owner, row.heartbeat_at
        stale = (
            previous is None
            or previous == owner
            or beat is None
            or beat < utcnow() - timedelta(seconds=ttl_s)
            or _dead_here(previous)
        )
        if not stale:
            raise JobBusyError(
                f"job {name!r} is being run by {previous} (heartbeat {beat:%H:%M:%S} UTC). "
                "Wait for it, follow it with `orch status`, or stop it with `orch cancel`."
            )
        with self.session() as s:
            cond = JobRow.owner.is_(None) if previous is None else JobRow.owner == previous
            done = s.execute(
                update(JobRow)
                .where(JobRow.name == name, or_(cond))
                .values(owner=owner, heartbeat_at=utcnow(), state=JobState.RUNNING.value)
            ).rowcount  # type: ignore[attr-defined]  # an UPDATE's CursorResult
        if done != 1:
            raise JobBusyError(
                f"job {name!r} was claimed by another driver just now. "
                "Follow it with `orch status`."
            )
        return previous if previous not in (None, owner) else None

    def heartbeat(self, name: str, owner: str) -> bool:
        with self.session() as s:
            return (
                s.execute(
                    update(JobRow)
                    .where(JobRow.name == name, JobRow.owner == owner)
                    .values(heartbeat_at=utcnow())
                ).rowcount  # type: ignore[attr-defined]  # an UPDATE's CursorResult
                == 1
            )

    def release_job(self, name: str, owner: str) -> None:
        with self.session() as s:
            s.execute(
                update(JobRow).where(JobRow.name == name, JobRow.owner == owner).values(owner=None)
            )

    def close_open_attempts(self, name: str, failure_class: str, message: str) -> list[str]:
        """After a driver died: its open attempts end; their trials become PENDING again.
        Returns the keys of those trials."""
        keys = []
        with self.session() as s:
            for t in self._job(s, name).trials:
                open_attempts = [a for a in t.attempt_rows if a.ended_at is None]
                for a in open_attempts:
                    a.ended_at, a.outcome = utcnow(), "LOST"
                    a.failure_class, a.message = failure_class, message
                if t.state not in TERMINAL:
                    t.state = TrialState.PENDING
                    keys.append(t.key)
        return keys

    def set_ray_job(self, name: str, ray_job_id: str, address: str) -> None:
        with self.session() as s:
            row = self._job(s, name)
            row.ray_job_id, row.ray_address = ray_job_id, address

    # -- learned speeds -----------------------------------------------------------------
    def record_speed(self, gpu_type: str, macs_per_s: float, weight: float = 0.2) -> None:
        """Exponential moving average of a measured / estimated epoch-time ratio, keyed by
        "family@gpu_type" (spec/cost.py: efficiency_sample; the column names are from when
        it held MAC/s per GPU type)."""
        with self.session() as s:
            row = s.get(SpeedRow, gpu_type)
            if row is None:
                s.add(SpeedRow(gpu_type=gpu_type, macs_per_s=macs_per_s, samples=1))
            else:
                row.macs_per_s = (1 - weight) * row.macs_per_s + weight * macs_per_s
                row.samples += 1

    def speeds(self) -> dict[str, float]:
        """The learned ratios by "family@gpu_type" (spec/cost.py: estimate(learned=...))."""
        with self.session() as s:
            return {r.gpu_type: r.macs_per_s for r in s.scalars(select(SpeedRow))}

    def job(self, name: str) -> JobView | None:
        with self.session() as s:
            row = s.scalar(select(JobRow).where(JobRow.name == name))
            return None if row is None else _job_view(row)

    def jobs(self) -> list[JobView]:
        with self.session() as s:
            return [_job_view(r) for r in s.scalars(select(JobRow).order_by(JobRow.created_at))]

    # -- trials -------------------------------------------------------------------------
    def finished_keys(self, job: str) -> set[str]:
        with self.session() as s:
            rows = s.scalars(
                select(TrialRow.key)
                .join(JobRow)
                .where(JobRow.name == job, TrialRow.state == FINISHED)
            )
            return set(rows)

    def trial(self, job: str, key: str) -> TrialView:
        """One trial, read alone: the driver asks at every failure and attempt, and a job
        view would read all of a 10,000-trial grid each time."""
        with self.session() as s:
            return _trial_view(job, self._trial(s, job, key))

    def update_trial(self, job: str, key: str, **fields: object) -> None:
        with self.session() as s:
            t = self._trial(s, job, key)
            for name, value in fields.items():
                setattr(t, name, value)

    def start_attempt(self, job: str, key: str, *, node: str | None, start_epoch: int) -> None:
        with self.session() as s:
            t = self._trial(s, job, key)
            t.attempts += 1
            t.state, t.node, t.error = TrialState.RUNNING, node or t.node, None
            t.attempt_rows.append(AttemptRow(node=node, start_epoch=start_epoch))

    def end_attempt(
        self,
        job: str,
        key: str,
        *,
        outcome: str,
        failure_class: str | None = None,
        message: str | None = None,
    ) -> None:
        with self.session() as s:
            t = self._trial(s, job, key)
            t.state = outcome
            if message:
                t.error = message
            open_attempts = [a for a in t.attempt_rows if a.ended_at is None]
            for a in open_attempts:
                a.ended_at, a.outcome = utcnow(), outcome
                a.failure_class, a.message = failure_class, message

    def note_attempt(self, job: str, key: str, *, node: str | None, start_epoch: int) -> None:
        """What the running attempt reported first: where it runs, where it resumed."""
        with self.session() as s:
            t = self._trial(s, job, key)
            for a in t.attempt_rows:
                if a.ended_at is None:
                    a.node, a.start_epoch = node, start_epoch
            if node:
                t.node = node

    def attempts(self, job: str, key: str) -> list[dict[str, object]]:
        with self.session() as s:
            return [
                {
                    "node": a.node,
                    "start_epoch": a.start_epoch,
                    "outcome": a.outcome,
                    "failure_class": a.failure_class,
                    "message": a.message,
                    "started_at": a.started_at,
                    "ended_at": a.ended_at,
                }
                for a in self._trial(s, job, key).attempt_rows
            ]

    def reset_trials(self, job: str, keys: set[str]) -> None:
        """For --force: forget progress so the trials train again from scratch."""
        with self.session() as s:
            for t in self._job(s, job).trials:
                if t.key in keys:
                    t.state, t.epochs_done, t.error = TrialState.PENDING, 0, None
                    t.last_accuracy = t.test_accuracy = None
                    t.mlflow_run_id = None
                    t.train_time_s, t.lost_time_s, t.counted_failures = None, 0.0, 0

    @staticmethod
    def _job(s: Session, name: str) -> JobRow:
        row = s.scalar(select(JobRow).where(JobRow.name == name))
        if row is None:
            raise LedgerError(f"no job named {name!r} in the ledger. See `orch status`.")
        return row

    def _trial(self, s: Session, job: str, key: str) -> TrialRow:
        row = s.scalar(select(TrialRow).join(JobRow).where(JobRow.name == job, TrialRow.key == key))
        if row is None:
            raise LedgerError(f"job {job!r} has no trial with key {key}.")
        return row


# A database that restarts or drops a connection mid-job: each method is one transaction,
# run again once the server answers (reconnect.py). Not __init__: a ledger that cannot be
# opened at all is reported at once.
Ledger.on_wait = None  # type: ignore[attr-defined]  # set by the driver: what it waits for
for _name, _fn in list(vars(Ledger).items()):
    if callable(_fn) and not _name.startswith("_") and _name != "session":
        setattr(Ledger, _name, retrying(_fn))


def driver_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_here(owner: str) -> bool:
    """True when `owner` is a driver on this host whose process is gone."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets `orch status` read while a running submit writes; the timeout rides out
    # the short write locks instead of failing with "database is locked".
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=10000")  # first: switching to WAL may wait on a lock
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


def _trial_view(job: str, t: TrialRow) -> TrialView:
    return TrialView(
        job=job,
        key=t.key,
        name=t.name,
        model=t.model,
        state=t.state,
        epochs_done=t.epochs_done,
        epochs_total=t.epochs_total,
        last_accuracy=t.last_accuracy,
        test_accuracy=t.test_accuracy,
        node=t.node,
        gpu=t.gpu,
        attempts=t.attempts,
        error=t.error,
        mlflow_run_id=t.mlflow_run_id,
        updated_at=t.updated_at,
        epoch_time_s=t.epoch_time_s,
        train_time_s=t.train_time_s,
        lost_time_s=t.lost_time_s or 0.0,
        counted_failures=t.counted_failures or 0,
    )


def _job_view(row: JobRow) -> JobView:
    return JobView(
        name=row.name,
        spec_path=row.spec_path,
        experiment=row.experiment,
        state=row.state,
        created_at=row.created_at,
        updated_at=row.updated_at,
        mlflow_run_id=row.mlflow_run_id,
        trials=tuple(_trial_view(row.name, t) for t in row.trials),
        owner=row.owner,
        heartbeat_at=row.heartbeat_at,
        ray_job_id=row.ray_job_id,
        ray_address=row.ray_address,
        spec_text=row.spec_text,
        waiting_for=row.waiting_for,
    )
