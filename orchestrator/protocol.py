"""The trial -> driver vocabulary, in one place (pure: no Ray, TensorFlow or MLflow).

A trial process reports to the driver through `tune.report`, which takes a flat dict. Both
sides speak in the types below: the trial builds an `EpochReport` per epoch and, when it
ends early, a `TrialEnd`, and turns them into a dict only at `tune.report`; the driver
parses each dict once (`parse_report`) and hands typed values on. Trial and job states,
failure classes, MLflow tag names and metric names are defined here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TrialState(StrEnum):
    """A trial's state in the ledger, the MLflow tag `orch.state` and the displays."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"  # failed, and Tune runs it again (displays and metrics only)
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    DIVERGED = "DIVERGED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"  # finished by an earlier submit (live display only)
    PARTIAL = "PARTIAL"  # a report row whose seeds did not all finish (table only)


TERMINAL_STATES = (
    TrialState.FINISHED,
    TrialState.FAILED,
    TrialState.DIVERGED,
    TrialState.CANCELLED,
)


class JobState(StrEnum):
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class MlflowStatus:
    """MLflow's own run statuses (its vocabulary, not orch's states)."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class TuneStatus:
    """Ray Tune's trial statuses, as the watchdog reads them."""

    PENDING = "PENDING"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"


class FailureClass(StrEnum):
    """Why a trial did not finish; `INFRASTRUCTURE` never counts against its retries."""

    NODE_LOST = "node_lost"  # infrastructure
    DRIVER_LOST = "driver_lost"  # infrastructure
    OOM = "oom"
    DIVERGED = "diverged"  # deterministic: never retried
    CODE_ERROR = "code_error"  # deterministic: reported once, never retried
    INFEASIBLE = "infeasible"  # no node can hold it
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"  # resources.timeout_s spent
    ERROR = "error"  # anything else that escaped the trial: retried within the budget
    # Not a failure: stopped after a checkpoint to resume on a faster GPU that freed up
    # (scheduling/policy/migrate.py; Tune runs it again at once, on that type), or after
    # its measured epoch, to resume when the job is planned (scheduling/policy/profile.py).
    MIGRATED = "migrated"


INFRASTRUCTURE = frozenset({FailureClass.NODE_LOST, FailureClass.DRIVER_LOST})
# Ends of an attempt that never use up a trial's retries.
NOT_COUNTED = INFRASTRUCTURE | {FailureClass.MIGRATED}
# What a trial raises after honouring a move (`TrialMigratedError`): the driver tells a
# move from a failure by this text in Tune's error file.
MIGRATION_MARK = "orch: moved to a faster GPU"


class TrialMigratedError(RuntimeError):
    """Raised by a trial that stopped after its checkpoint to move to a faster GPU type:
    Tune then runs it again (its retry), and the driver binds that run to the new type."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"{MIGRATION_MARK}: {detail}"[:2000])
        self.detail = detail

    def __reduce__(self) -> tuple[type[TrialMigratedError], tuple[str]]:
        return (TrialMigratedError, (self.detail,))  # unpickled with the mark once


class Role(StrEnum):
    """The value of the tag `orch.role`: what an MLflow run stands for."""

    JOB = "job"  # the job's parent run
    TRIAL = "trial"  # one trial's run, the same across its retries and resumes


class Tag:
    """MLflow tag names (runs of one job: a parent run, one child run per trial)."""

    TRIAL_KEY = "orch.trial_key"
    JOB = "orch.job"
    ROLE = "orch.role"  # a Role
    STATE = "orch.state"  # a TrialState
    GROUP = "orch.group"
    POSITION = "orch.position"
    REF_PREFIX = "orch.ref."  # orch.ref.<Reference field>
    PROV_PREFIX = "orch.prov."  # orch.prov.<provenance field>
    ERROR = "orch.error"  # the last failure's message
    FAILURE_CLASS = "orch.failure_class"  # a FailureClass
    GPU = "orch.gpu"  # hardware the trial ran on, as it reported it
    GPU_COUNT = "orch.gpu_count"
    PRECISION = "orch.precision"
    NODE = "orch.node"
    VAL_ON_TEST = "orch.val_on_test"
    HARDWARE = "orch.hardware"  # every GPU label it ran on, " + "-joined
    MIXED_HARDWARE = "orch.mixed_hardware"  # "True" when that is more than one


class MetricName:
    """MLflow metric names; per epoch at step = epoch, the final ones at the last epoch."""

    LOSS = "loss"
    ACCURACY = "accuracy"
    VAL_LOSS = "val_loss"
    VAL_ACCURACY = "val_accuracy"
    LR = "lr"
    EPOCH_TIME_S = "epoch_time_s"
    IMAGES_PER_S = "images_per_s"
    TEST_LOSS = "test_loss"
    TEST_ACCURACY = "test_accuracy"
    TRAIN_TIME_S = "train_time_s"
    LOST_TIME_S = "lost_time_s"
    PARAMS = "params"
    EPOCHS_DONE = "epochs_done"
    SYSTEM_PREFIX = "system/"  # MLflow's own system metric names


# train_time_s is an epoch metric (its last value is the total), and so is epochs_done;
# lost_time_s is logged by the recorder at each failure. One value per step, never two.
EPOCH_METRICS = (
    MetricName.LOSS,
    MetricName.ACCURACY,
    MetricName.VAL_LOSS,
    MetricName.VAL_ACCURACY,
    MetricName.LR,
    MetricName.EPOCH_TIME_S,
    MetricName.IMAGES_PER_S,
    MetricName.TRAIN_TIME_S,
    MetricName.EPOCHS_DONE,
)
FINAL_METRICS = (MetricName.TEST_LOSS, MetricName.TEST_ACCURACY, MetricName.PARAMS)


@dataclass(frozen=True)
class EpochReport:
    """One epoch of one trial, as the trial reports it (or the test-only report of a trial
    restarted after its last checkpoint). None: not measured in this report."""

    epoch: int
    epochs_done: int
    params: int | None = None
    gpu_name: str | None = None
    gpu_count: int | None = None
    precision: str | None = None
    resumed_from: int | None = None
    replicas: int | None = None
    val_on_test: bool | None = None
    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    lr: float | None = None
    epoch_time_s: float | None = None
    images_per_s: float | None = None
    train_time_s: float | None = None
    best_val_accuracy: float | None = None
    test_loss: float | None = None
    test_accuracy: float | None = None
    checkpointed: bool | None = None
    model_summary: str | None = None
    model_path: str | None = None
    node_id: str | None = None  # Ray's id of the node the trial runs on (None outside Ray)
    # What produced this result: versions, commit, GPU stack, data sha256 (provenance.py)
    provenance: Mapping[str, str] | None = field(default=None, hash=False)
    # Anything else the trial or Tune adds (system/* metrics, node_ip): passed on as is.
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The flat dict `tune.report` takes; unmeasured values are left out."""
        out = {f: v for f, v in _fields(self).items() if v is not None}
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EpochReport:
        known = _field_names(cls)
        extra = {k: v for k, v in d.items() if k not in known and k not in _END_KEYS}
        return cls(**{k: v for k, v in d.items() if k in known}, extra=extra)

    # -- what the driver makes of it ------------------------------------------------------
    @property
    def node(self) -> str | None:
        """Node id (unique even when nodes share an IP), else the IP Tune adds."""
        return self.node_id or self.extra.get(_TUNE_NODE_IP)

    @property
    def gpu_label(self) -> str | None:
        """The hardware as tables show it: "GTX 1080 Ti", "GTX 1080 Ti x2"; None: unknown."""
        if not self.gpu_name:
            return None
        count = int(self.gpu_count or 0)
        return str(self.gpu_name) if count <= 1 else f"{self.gpu_name} x{count}"

    def hardware_tags(self) -> dict[str, Any]:
        """The MLflow tags of where and how the trial ran, for the facts this report has."""
        facts = {
            Tag.GPU: self.gpu_name,
            Tag.GPU_COUNT: self.gpu_count,
            Tag.PRECISION: self.precision,
            Tag.NODE: self.node_id,
            Tag.VAL_ON_TEST: self.val_on_test,
        }
        return {tag: v for tag, v in facts.items() if v is not None}

    def epoch_metrics(self) -> dict[str, float]:
        """The MLflow metrics of this epoch (step = epoch), MLflow's system/* ones included."""
        out = {k: float(v) for k in EPOCH_METRICS if (v := getattr(self, k)) is not None}
        system = {k: float(v) for k, v in self.extra.items() if k.startswith(_SYSTEM)}
        return {**out, **system}

    def final_metrics(self) -> dict[str, float]:
        """The metrics logged once, at the last epoch: test results and the model's size."""
        return {k: float(v) for k in FINAL_METRICS if (v := getattr(self, k)) is not None}


_SYSTEM = MetricName.SYSTEM_PREFIX
_TUNE_NODE_IP = "node_ip"  # Tune's own field of every result


class EndKind(StrEnum):
    """How a trial ended early; each is one flag in the reported dict (`diverged=1`...)."""

    DIVERGED = "diverged"  # a NaN loss: deterministic, never retried
    FAILED = "failed"  # an error in the trial's own code or data: reported once
    STOPPED = "stopped"  # a stop request (cancel, timeout, infeasible), after a checkpoint


@dataclass(frozen=True)
class TrialEnd:
    """A trial that ends without finishing: it diverged, failed, or stopped on request."""

    kind: EndKind
    failure_class: FailureClass
    message: str
    epochs_done: int | None = None
    last: EpochReport | None = None  # the epoch report that came with it, if any
    # What else the trial reports with it (the run's static facts): passed on as is.
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def state(self) -> TrialState:
        if self.kind == EndKind.DIVERGED:
            return TrialState.DIVERGED
        if self.kind == EndKind.STOPPED and self.failure_class == FailureClass.CANCELLED:
            return TrialState.CANCELLED
        return TrialState.FAILED

    def to_dict(self) -> dict[str, Any]:
        """The dict the driver has always read: diverged=1 + message, failed=1 +
        failure_class + message, or stopped=1 + failure_class + reason."""
        out = {**self.extra, **(self.last.to_dict() if self.last is not None else {})}
        if self.epochs_done is not None:
            out[_EPOCHS_DONE] = self.epochs_done
        out[str(self.kind)] = 1
        if self.kind != EndKind.DIVERGED:
            out[_FAILURE_CLASS] = str(self.failure_class)
        out[_REASON if self.kind == EndKind.STOPPED else _MESSAGE] = self.message
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrialEnd | None:
        """The trial's end in a reported dict, or None when it is an ordinary epoch."""
        kind = next((k for k in EndKind if d.get(str(k))), None)
        if kind is None:
            return None
        default = {
            EndKind.DIVERGED: FailureClass.DIVERGED,
            EndKind.FAILED: FailureClass.ERROR,
            EndKind.STOPPED: FailureClass.CANCELLED,
        }[kind]
        cls_ = failure_class(d.get(_FAILURE_CLASS), default)
        text = d.get(_REASON if kind == EndKind.STOPPED else _MESSAGE, str(kind))
        last = EpochReport.from_dict(d) if _is_epoch(d) else None
        done = d.get(_EPOCHS_DONE)
        # Without an epoch report, the facts that came with the end are kept as they came.
        kept = {k: v for k, v in d.items() if k not in _END_KEYS and k != _EPOCHS_DONE}
        extra = {} if last is not None else kept
        return cls(kind, cls_, str(text), int(done) if done is not None else None, last, extra)

    @property
    def last_epochs_done(self) -> int | None:
        """Epochs done when it ended, as far as the report says."""
        if self.epochs_done is not None:
            return self.epochs_done
        return self.last.epochs_done if self.last is not None else None


@dataclass(frozen=True)
class StopRequest:
    """The driver's request that a trial end (cancel, retry budget spent, infeasible), or
    the trial's own (timeout): written as JSON under the storage path (`Control`)."""

    failure_class: FailureClass
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {_FAILURE_CLASS: str(self.failure_class), _REASON: self.reason}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> StopRequest | None:
        """A request as read back; an unknown class is a cancel, a missing reason says
        "stopped"."""
        if d is None:
            return None
        cls_ = failure_class(d.get(_FAILURE_CLASS), FailureClass.CANCELLED)
        return cls(cls_, str(d.get(_REASON, EndKind.STOPPED)))

    def end(self, *, epochs_done: int | None = None, last: EpochReport | None = None) -> TrialEnd:
        """The trial's last report when it honours this request (after the epoch `last`)."""
        return TrialEnd(EndKind.STOPPED, self.failure_class, self.reason, epochs_done, last)


def failure_class(value: Any, default: FailureClass = FailureClass.ERROR) -> FailureClass:
    """A reported failure class; an unknown or missing one is `default`."""
    try:
        return FailureClass(str(value))
    except ValueError:
        return default


Report = EpochReport | TrialEnd


def parse_report(d: Mapping[str, Any]) -> Report | None:
    """The driver's one parse of a `tune.report` dict; None for Tune's own bookkeeping
    results that carry no epoch (e.g. a trial that reported nothing yet)."""
    end = TrialEnd.from_dict(d)
    if end is not None:
        return end
    return EpochReport.from_dict(d) if _is_epoch(d) else None


def trial_state(value: Any, default: TrialState = TrialState.PENDING) -> TrialState:
    """A state read back (an `orch.state` tag, a ledger row); MLflow's own run status
    stands in for a run without the tag (KILLED: what orch ends a cancelled run with)."""
    text = str(value)
    if text == MlflowStatus.KILLED:
        return TrialState.CANCELLED
    try:
        return TrialState(text)
    except ValueError:
        return default


# The keys of a reported dict beyond EpochReport's fields (the end flags and their words).
_EPOCH, _EPOCHS_DONE = "epoch", "epochs_done"
_FAILURE_CLASS, _MESSAGE, _REASON = "failure_class", "message", "reason"
_END_KEYS = frozenset({*(str(k) for k in EndKind), _FAILURE_CLASS, _MESSAGE, _REASON})


def _is_epoch(d: Mapping[str, Any]) -> bool:
    return _EPOCH in d and _EPOCHS_DONE in d


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name != "extra"}


def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls) if f.name != "extra")
