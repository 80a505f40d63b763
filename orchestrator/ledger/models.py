"""Ledger tables (SQLAlchemy 2.0): jobs, their trials, and every attempt at a trial."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from orchestrator.protocol import JobState, TrialState


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    spec_path: Mapped[str] = mapped_column(Text)
    experiment: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default=JobState.SUBMITTED.value)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    ray_job_id: Mapped[str | None] = mapped_column(String(100))
    ray_address: Mapped[str | None] = mapped_column(String(300))
    spec_text: Mapped[str | None] = mapped_column(Text)  # the job file as submitted
    # The live driver's lease ("host:pid") and its last heartbeat: one driver per job.
    owner: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None]
    waiting_for: Mapped[str | None] = mapped_column(Text)  # e.g. a tracker that is down
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    trials: Mapped[list[TrialRow]] = relationship(
        back_populates="job", order_by="TrialRow.position", cascade="all, delete-orphan"
    )


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("job_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    key: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(default=0)  # order in the job file
    state: Mapped[str] = mapped_column(String(20), default=TrialState.PENDING.value)
    epochs_done: Mapped[int] = mapped_column(default=0)
    epochs_total: Mapped[int] = mapped_column(default=0)
    last_accuracy: Mapped[float | None]
    test_accuracy: Mapped[float | None]
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    node: Mapped[str | None] = mapped_column(String(200))
    gpu: Mapped[str | None] = mapped_column(String(100))
    epoch_time_s: Mapped[float | None]  # latest epoch's compute time, for ETAs
    train_time_s: Mapped[float | None]  # compute time reported so far
    lost_time_s: Mapped[float] = mapped_column(default=0.0)  # compute lost to failures
    counted_failures: Mapped[int] = mapped_column(default=0)  # against max_retries
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    job: Mapped[JobRow] = relationship(back_populates="trials")
    attempt_rows: Mapped[list[AttemptRow]] = relationship(
        back_populates="trial", order_by="AttemptRow.id", cascade="all, delete-orphan"
    )


class SpeedRow(Base):
    """Measured training speed per GPU type (MAC/s, forward+backward), learned from
    finished epochs: the cost model's replacement for the prior."""

    __tablename__ = "speeds"

    gpu_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    macs_per_s: Mapped[float]
    samples: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AttemptRow(Base):
    """One run of a trial's process: a start, and how it ended (for failure classes)."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    node: Mapped[str | None] = mapped_column(String(200))
    start_epoch: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[str | None] = mapped_column(String(20))
    failure_class: Mapped[str | None] = mapped_column(String(30))
    message: Mapped[str | None] = mapped_column(Text)

    trial: Mapped[TrialRow] = relationship(back_populates="attempt_rows")
