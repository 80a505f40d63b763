"""Frozen specs: what a job file means, once validated. Built by `spec.load`, read by all."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from orchestrator.spec import schema as s
from orchestrator.spec.recipe import OPTIMIZERS, PRECISIONS, WEIGHT_DECAY_MODES
from orchestrator.spec.schedule import ScheduleValue

# Marks a field computed from the others at build time: it never enters the content key.
DERIVED = {"derived": True}

# A frozen mapping as sorted (key, value) pairs, so specs stay hashable and compare by value.
Items = tuple[tuple[str, Any], ...]


def freeze(mapping: Mapping[str, Any] | None) -> Items:
    """Sorted, hashable form of a (possibly nested) mapping; lists become tuples."""

    def _f(v: Any) -> Any:
        if isinstance(v, Mapping):
            return freeze(v)
        if isinstance(v, list | tuple):
            return tuple(_f(x) for x in v)
        return v

    return tuple(sorted((str(k), _f(v)) for k, v in (mapping or {}).items()))


def thaw(items: Items) -> dict[str, Any]:
    """Inverse of `freeze` for one level (nested frozen items stay as tuples of pairs)."""
    out: dict[str, Any] = {}
    for k, v in items:
        pairs = isinstance(v, tuple) and v and all(isinstance(p, tuple) and len(p) == 2 for p in v)
        if pairs and all(isinstance(p[0], str) for p in v):
            out[k] = thaw(v)
            continue
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def declared(spec: Any) -> dict[str, Any]:
    """`asdict(spec)` without derived fields: what a job file can say about it."""
    out = asdict(spec)
    for f in fields(spec):
        if f.metadata.get("derived"):
            out.pop(f.name)
    return out


def _rule(check: s.Check | s.Table, default: Any) -> Any:
    """A field with the job file's rule for it: the schema (`spec.fields`) is read from the
    dataclasses, so a new field is one edit that the schema, the content key, MLflow's
    params and the name templates all follow."""
    return field(default=default, metadata={"rule": check})


def _preprocessings() -> list[str]:
    from orchestrator.data import PREPROCESSING

    return list(PREPROCESSING)


def _augmentations() -> list[str]:
    from orchestrator.data import AUGMENTATIONS

    return list(AUGMENTATIONS)


def rules(cls: type) -> dict[str, s.Check | s.Table]:
    """The job-file rule of every field of a spec dataclass that a job file may set."""
    return {f.name: f.metadata["rule"] for f in fields(cls) if "rule" in f.metadata}


@dataclass(frozen=True)
class DataSpec:
    """Which data a trial trains on. `data_dir` says where, so it is not part of the key."""

    name: str = "digits"  # the trial's `dataset`
    # fraction (<1) or count (>=1) held out from train
    validation_size: float = _rule(s.is_number(ge=0), 0.0)
    train_size: int | None = _rule(s.is_int(lo=1), None)  # stratified subset, for fast tests
    test_size: int | None = _rule(s.is_int(lo=1), None)
    data_dir: str | None = _rule(s.is_str, None)


@dataclass(frozen=True)
class Recipe:
    """How a trial trains. Every field a job file sets changes the result and enters the key."""

    optimizer: str = _rule(s.one_of(OPTIMIZERS, "optimizer"), "sgd")
    lr: float = _rule(s.is_number(gt=0), 0.1)
    momentum: float = _rule(s.is_number(ge=0, lt=1), 0.9)
    nesterov: bool = _rule(s.is_bool, True)
    weight_decay: float = _rule(s.is_number(ge=0), 1e-4)
    # "l2": kernel regulariser (the seeds); "decoupled": in the optimizer. A job file that
    # leaves it out gets `spec.recipe.default_weight_decay_mode` (decoupled for adamw).
    weight_decay_mode: str = _rule(s.one_of(WEIGHT_DECAY_MODES, "weight decay mode"), "l2")
    # e.g. (("kind", "step"), ("boundaries", (81, 122)), ...); () = constant. The table is
    # parsed by spec.schedule.parse_schedule.
    schedule: Items = _rule(s.Table({}, free=True), ())  # noqa: RUF009 (a frozen rule)
    preprocess: str = _rule(s.one_of(_preprocessings, "preprocessing"), "meanstd")
    augment: str = _rule(s.one_of(_augmentations, "augmentation"), "standard")
    precision: str = _rule(s.one_of(PRECISIONS, "precision"), "float32")
    xla: bool = _rule(s.is_bool, False)
    # `schedule` parsed once by the spec (None: constant lr); the trial runs this value.
    lr_schedule: ScheduleValue | None = field(
        default=None, compare=False, repr=False, metadata=DERIVED
    )

    @property
    def schedule_dict(self) -> dict[str, Any]:
        return thaw(self.schedule)


@dataclass(frozen=True)
class Resources:
    """What one trial asks of the cluster. Not part of the key: where it runs is not what."""

    gpus: float = 0.0  # fractional packs small models on one GPU (logical only in Ray)
    cpus: float = 1.0
    memory_gb: float | None = None
    gpu_type: tuple[str, ...] = ()  # acceptable types in order of preference; () = any
    max_retries: int = 2
    timeout_s: float | None = None


@dataclass(frozen=True)
class Reference:
    """Published numbers a trial is compared with in the table."""

    accuracy: float | None = None  # percent; a job file may give `error` instead
    error: float | None = None  # percent (papers' error rates); accuracy = 100 - error
    params: int | None = None
    time: str | None = None  # as published, e.g. "1h40"
    gpu: str | None = None
    batch_size: int | None = None
    epochs: int | None = None
    source: str | None = None


@dataclass(frozen=True)
class CheckpointPolicy:
    every_epochs: int = 1
    every_minutes: float | None = None
    keep: int = 2  # the newest and one before it, to fall back on a corrupt newest
    save_model: bool = False  # also keep the final model as a .keras MLflow artifact


@dataclass(frozen=True)
class TrialSpec:
    name: str
    model: str
    model_args: Items
    data: DataSpec
    epochs: int
    batch_size: int
    seed: int
    recipe: Recipe
    resources: Resources
    reference: Reference
    checkpoint: CheckpointPolicy
    key: str = ""
    # The grid cell's name without the seed: the report aggregates a group's seeds as
    # mean +- std. A trial without a seeds axis is its own group ("" means: the name).
    group: str = ""

    def __post_init__(self) -> None:
        if not self.group:
            object.__setattr__(self, "group", self.name)

    @property
    def model_kwargs(self) -> dict[str, Any]:
        return thaw(self.model_args)


@dataclass(frozen=True)
class NodeType:
    """A kind of node the job expects (`[[cluster.node_type]]`), for feasibility checks."""

    name: str
    cpus: float
    gpus: int = 0
    gpu_type: str | None = None  # None: a CPU-only node
    memory_gb: float | None = None  # None: not declared, so never a contradiction
    count: int = 1


@dataclass(frozen=True)
class JobSpec:
    name: str
    path: str
    trials: tuple[TrialSpec, ...]
    description: str = ""
    max_concurrent: int | None = None
    experiment: str = field(default="")  # MLflow experiment; defaults to the job name
    cluster: tuple[NodeType, ...] = ()  # the node types the job expects; () = not declared
    migrate: bool = True  # move running trials to faster GPUs that free up (policy/migrate.py)

    @property
    def groups(self) -> dict[str, tuple[TrialSpec, ...]]:
        """Trials by group (a grid cell's seeds together), in file order."""
        out: dict[str, list[TrialSpec]] = {}
        for t in self.trials:
            out.setdefault(t.group, []).append(t)
        return {g: tuple(ts) for g, ts in out.items()}

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.name
