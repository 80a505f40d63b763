"""Per-epoch learning-rate schedules (pure Python, no TensorFlow): parsed once, in the spec.

Epochs are 0-based, as Keras `LearningRateScheduler` passes them to the seeds' scripts, and
the LR changes once per epoch, never per step. Schedules are frozen dataclasses with
`lr_at(epoch)`; reduce-on-plateau is the one stateful schedule (`observe` after each
epoch, `state`/`load_state` for checkpoints). `parse_schedule` turns a job file's
`recipe.schedule` table into a frozen `ScheduleValue` (reporting every problem at once as a
SpecError); the spec keeps that value on the Recipe, and the trial calls `start_schedule`
on it (a fresh PlateauSchedule for plateau, the value itself otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal, Protocol, runtime_checkable

from orchestrator.errors import SpecError, did_you_mean
from orchestrator.protocol import MetricName

SCHEDULE_KINDS: tuple[str, ...] = ("constant", "step", "cosine", "htd", "plateau")
BOUNDARY_MODES: tuple[str, ...] = ("lt", "le")
PLATEAU_MODES: tuple[str, ...] = ("auto", "min", "max")


@runtime_checkable
class Schedule(Protocol):
    def lr_at(self, epoch: int) -> float: ...


def _check_epoch(epoch: int) -> None:
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0 (0-based). Received: epoch={epoch}")


@dataclass(frozen=True)
class ConstantSchedule:
    lr: float

    def lr_at(self, epoch: int) -> float:
        _check_epoch(epoch)
        return self.lr


@dataclass(frozen=True)
class StepSchedule:
    """values[i] while epoch is before boundaries[i]; values[-1] after the last boundary.

    boundary="lt": value i while epoch < boundaries[i] (ResNet: 0.1 for e < 81);
    boundary="le": value i while epoch <= boundaries[i] (NiN: 0.01 for e <= 80).
    The seeds use both (docs/seed_models.md), and a one-epoch shift is a different recipe.
    """

    boundaries: tuple[int, ...]
    values: tuple[float, ...]
    boundary: Literal["lt", "le"] = "lt"

    def lr_at(self, epoch: int) -> float:
        _check_epoch(epoch)
        for bound, value in zip(self.boundaries, self.values, strict=False):
            if epoch < bound or (self.boundary == "le" and epoch == bound):
                return value
        return self.values[-1]


@dataclass(frozen=True)
class CosineSchedule:
    """end + (lr - end)/2 * (1 + cos(pi * e / epochs)); htd's `cos` is lr=0.1, end 0, E=200."""

    lr: float
    epochs: int
    end_lr: float = 0.0

    def lr_at(self, epoch: int) -> float:
        _check_epoch(epoch)
        progress = min(epoch, self.epochs) / self.epochs
        return self.end_lr + (self.lr - self.end_lr) / 2 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class HTDSchedule:
    """Hyperbolic-tangent decay (arXiv 1806.01593): lr/2 * (1 - tanh(L + (U - L) * e/E)).

    L=-6, U=3 as in htd/ResNet.py (which calls them start and end).
    """

    lr: float
    epochs: int
    lower: float = -6.0
    upper: float = 3.0

    def lr_at(self, epoch: int) -> float:
        _check_epoch(epoch)
        progress = min(epoch, self.epochs) / self.epochs
        return self.lr / 2 * (1 - math.tanh(self.lower + (self.upper - self.lower) * progress))


@dataclass(frozen=True)
class WarmupSchedule:
    """Linear warm-up over the first `epochs` epochs, multiplying the wrapped schedule.

    lr(e) = inner(e) * (start_factor + (1 - start_factor) * e / epochs) for e < epochs,
    inner(e) afterwards: epoch 0 trains at start_factor x the inner LR, never at 0.
    """

    inner: Schedule
    epochs: int
    start_factor: float = 0.1

    def lr_at(self, epoch: int) -> float:
        _check_epoch(epoch)
        value = self.inner.lr_at(epoch)
        if epoch >= self.epochs:
            return value
        return value * (self.start_factor + (1 - self.start_factor) * epoch / self.epochs)


@dataclass(frozen=True)
class PlateauConfig:
    """Keras ReduceLROnPlateau semantics; `mode="auto"` means max for accuracies, else min."""

    lr: float
    monitor: str = MetricName.VAL_LOSS
    factor: float = 0.1
    patience: int = 10
    min_lr: float = 0.0
    mode: Literal["auto", "min", "max"] = "auto"
    min_delta: float = 1e-4
    cooldown: int = 0

    @property
    def maximise(self) -> bool:
        return self.mode == "max" or (self.mode == "auto" and "acc" in self.monitor)


@dataclass
class PlateauSchedule:
    """Reduce-on-plateau: the LR drops by `factor` after `patience` epochs without improvement.

    Stateful: call `observe(epoch, metrics)` after each epoch's validation; save `state()`
    in the checkpoint and `load_state()` it on resume, or a resumed trial would restart
    its patience count and keep a stale LR.
    """

    config: PlateauConfig
    lr: float = field(init=False)
    best: float | None = None
    wait: int = 0
    cooldown_left: int = 0

    def __post_init__(self) -> None:
        self.lr = self.config.lr

    def lr_at(self, epoch: int) -> float:
        _check_epoch(epoch)
        return self.lr

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        delta = self.config.min_delta
        if self.config.maximise:
            return value > self.best + delta
        return value < self.best - delta

    def observe(self, epoch: int, metrics: Mapping[str, float]) -> float:
        """Record epoch `epoch`'s metrics; returns the LR for the next epoch."""
        cfg = self.config
        if cfg.monitor not in metrics:
            raise KeyError(
                f"plateau schedule monitors {cfg.monitor!r}, absent from the metrics "
                f"{sorted(metrics)}"
            )
        value = float(metrics[cfg.monitor])
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
        elif self.cooldown_left == 0:
            self.wait += 1
            if self.wait >= cfg.patience and self.lr > cfg.min_lr:
                self.lr = max(self.lr * cfg.factor, cfg.min_lr)
                self.wait, self.cooldown_left = 0, cfg.cooldown
        return self.lr

    def state(self) -> dict[str, Any]:
        """JSON-friendly state for a checkpoint."""
        return {
            "lr": self.lr,
            "best": self.best,
            "wait": self.wait,
            "cooldown_left": self.cooldown_left,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.lr = float(state["lr"])
        self.best = None if state["best"] is None else float(state["best"])
        self.wait = int(state["wait"])
        self.cooldown_left = int(state["cooldown_left"])

    @classmethod
    def from_state(cls, config: PlateauConfig, state: Mapping[str, Any]) -> PlateauSchedule:
        schedule = cls(config)
        schedule.load_state(state)
        return schedule


# --------------------------------------------------------------------------------------
# Building schedules from a job file's `recipe.schedule` table.
# --------------------------------------------------------------------------------------

_REQUIRED = object()
_WARMUP_KEYS = ("warmup_epochs", "warmup_start_factor")
_KEYS: dict[str, tuple[str, ...]] = {
    "constant": ("lr",),
    "step": ("boundaries", "values", "boundary", "lr", "factor"),
    "cosine": ("lr", "epochs", "end_lr"),
    "htd": ("lr", "epochs", "lower", "upper"),
    "plateau": ("lr", "monitor", "factor", "patience", "min_lr", "mode", "min_delta", "cooldown"),
}
# What other libraries call orch's keys (PyTorch's MultiStepLR, StepLR, CosineAnnealingLR):
# the likeliest mistakes, named with the fix. A key written under its alias is reported once,
# as that alias, not again as missing.
_ALIASES = {"milestones": "boundaries", "gamma": "factor", "T_max": "epochs", "eta_min": "end_lr"}


class _Reader:
    """Reads typed values out of a schedule table, collecting problems instead of raising."""

    def __init__(
        self, table: Mapping[str, Any], problems: list[str], aliased: frozenset[str] = frozenset()
    ) -> None:
        self.table, self.problems, self.aliased = table, problems, aliased

    def _get(self, key: str, default: Any) -> Any:
        if key in self.table:
            return self.table[key]
        if default is _REQUIRED and key not in self.aliased:
            self.problems.append(f"{key}: missing. Set {key} in the schedule table.")
        return default

    def number(
        self,
        key: str,
        default: Any = _REQUIRED,
        *,
        gt: float | None = None,
        ge: float | None = None,
        lt: float | None = None,
    ) -> float | None:
        value = self._get(key, default)
        if value is None or value is _REQUIRED:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            self.problems.append(f"{key}: must be a number. Received: {key}={value!r}")
            return None
        failed = (
            (gt is not None and not value > gt and f"> {gt}")
            or (ge is not None and not value >= ge and f">= {ge}")
            or (lt is not None and not value < lt and f"< {lt}")
        )
        if failed:
            self.problems.append(f"{key}: must be {failed}. Received: {key}={value!r}")
            return None
        return float(value)

    def integer(self, key: str, default: Any = _REQUIRED, *, ge: int = 0) -> int | None:
        value = self._get(key, default)
        if value is None or value is _REQUIRED:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < ge:
            self.problems.append(
                f"{key}: must be a whole number >= {ge}. Received: {key}={value!r}"
            )
            return None
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str | None:
        value = self._get(key, default)
        if value not in choices:
            hint = did_you_mean(value, choices) if isinstance(value, str) else ""
            self.problems.append(
                f"{key}: must be one of {', '.join(choices)}. Received: {key}={value!r}.{hint}"
            )
            return None
        return value


def _step(r: _Reader) -> StepSchedule | None:
    raw = r._get("boundaries", _REQUIRED)
    boundaries: tuple[int, ...] | None = None
    if raw is not _REQUIRED:
        ok = isinstance(raw, list | tuple) and all(
            isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in raw
        )
        if not ok or len(raw) == 0 or any(a >= b for a, b in pairwise(raw)):
            r.problems.append(
                "boundaries: must be a non-empty list of increasing whole epochs >= 0. "
                f"Received: boundaries={raw!r}"
            )
        else:
            boundaries = tuple(raw)
    mode = r.choice("boundary", "lt", BOUNDARY_MODES)
    values = _step_values(r, boundaries)
    if boundaries is None or values is None or mode is None:
        return None
    return StepSchedule(boundaries, values, mode)  # type: ignore[arg-type]


def _step_values(r: _Reader, boundaries: tuple[int, ...] | None) -> tuple[float, ...] | None:
    """`values`, or lr * factor**i (e.g. WRN: lr 0.1, factor 0.2) when values are absent."""
    want = None if boundaries is None else len(boundaries) + 1
    if "values" not in r.table:
        lr, factor = r.number("lr", None, gt=0), r.number("factor", 0.1, gt=0)
        if lr is None:
            r.problems.append("values: missing. Give one LR per interval, or lr (and factor).")
            return None
        return (
            None if want is None or factor is None else tuple(lr * factor**i for i in range(want))
        )
    raw = r.table["values"]
    ok = isinstance(raw, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in raw
    )
    if not ok or (want is not None and len(raw) != want):
        need = f"{want} " if want is not None else ""
        r.problems.append(
            f"values: must be {need}learning rates > 0, one more than the boundaries. "
            f"Received: values={raw!r}"
        )
        return None
    return tuple(float(v) for v in raw)


def _cosine(r: _Reader) -> CosineSchedule | None:
    lr, epochs = r.number("lr", gt=0), r.integer("epochs", ge=1)
    end = r.number("end_lr", 0.0, ge=0)
    if lr is not None and end is not None and end > lr:
        r.problems.append(f"end_lr: must be <= lr ({lr}). Received: end_lr={end!r}")
        return None
    if lr is None or epochs is None or end is None:
        return None
    return CosineSchedule(lr, epochs, end)


def _htd(r: _Reader) -> HTDSchedule | None:
    lr, epochs = r.number("lr", gt=0), r.integer("epochs", ge=1)
    lower, upper = r.number("lower", -6.0), r.number("upper", 3.0)
    if lower is not None and upper is not None and lower >= upper:
        r.problems.append(f"upper: must be > lower ({lower}). Received: upper={upper!r}")
        return None
    if None in (lr, epochs, lower, upper):
        return None
    return HTDSchedule(lr, epochs, lower, upper)  # type: ignore[arg-type]


def _plateau(r: _Reader) -> PlateauConfig | None:
    monitor = r._get("monitor", MetricName.VAL_LOSS)
    if not isinstance(monitor, str) or not monitor:
        r.problems.append(f"monitor: must be a metric name. Received: monitor={monitor!r}")
    values = (
        r.number("lr", gt=0),
        r.number("factor", 0.1, gt=0, lt=1),
        r.integer("patience", 10),
        r.number("min_lr", 0.0, ge=0),
        r.choice("mode", "auto", PLATEAU_MODES),
        r.number("min_delta", 1e-4, ge=0),
        r.integer("cooldown", 0),
    )
    if None in values or not isinstance(monitor, str) or not monitor:
        return None
    lr, factor, patience, min_lr, mode, min_delta, cooldown = values
    return PlateauConfig(lr, monitor, factor, patience, min_lr, mode, min_delta, cooldown)  # type: ignore[arg-type]


_BUILDERS = {
    "constant": lambda r: None if (lr := r.number("lr", gt=0)) is None else ConstantSchedule(lr),
    "step": _step,
    "cosine": _cosine,
    "htd": _htd,
    "plateau": _plateau,
}


# What the spec keeps: frozen, hashable, comparable. Plateau's running state is not in it.
ScheduleValue = (
    ConstantSchedule | StepSchedule | CosineSchedule | HTDSchedule | WarmupSchedule | PlateauConfig
)


def start_schedule(value: ScheduleValue | None) -> Schedule | None:
    """The schedule a trial runs: the parsed value, or a fresh reduce-on-plateau state."""
    if isinstance(value, PlateauConfig):
        return PlateauSchedule(value)
    return value


def schedule_from_dict(
    table: Mapping[str, Any], *, epochs: int | None = None, lr: float | None = None
) -> Schedule:
    """`start_schedule(parse_schedule(...))`: a ready schedule from a table."""
    schedule = start_schedule(parse_schedule(table, epochs=epochs, lr=lr))
    assert schedule is not None  # parse_schedule returns a value or raises
    return schedule


def parse_schedule(
    table: Mapping[str, Any], *, epochs: int | None = None, lr: float | None = None
) -> ScheduleValue:
    """Parse a `recipe.schedule` table into a frozen value, e.g.

        {"kind": "step", "boundaries": [81, 122], "values": [0.1, 0.01, 0.001]}
        {"kind": "htd", "lr": 0.1, "epochs": 200, "warmup_epochs": 5}

    `epochs` and `lr` fill in a table's missing `epochs` / `lr` (the trial's values).
    Any kind but plateau takes `warmup_epochs` (and `warmup_start_factor`, default 0.1).
    Raises SpecError listing every problem; each message names the key and the value.
    """
    if not isinstance(table, Mapping):
        raise SpecError(f"schedule: must be a table. Received: {table!r}")
    table = dict(table)
    if epochs is not None and table.get("kind") in ("cosine", "htd"):
        table.setdefault("epochs", epochs)
    if lr is not None:
        table.setdefault("lr", lr)
    kind = table.get("kind")
    if not isinstance(kind, str) or kind not in _BUILDERS:
        hint = did_you_mean(kind, SCHEDULE_KINDS) if isinstance(kind, str) else ""
        shown = "missing" if kind is None else f"Received: kind={kind!r}"
        raise SpecError(f"kind: must be one of {', '.join(SCHEDULE_KINDS)}; {shown}.{hint}")
    problems: list[str] = []
    allowed = ("kind", *_KEYS[kind], *(_WARMUP_KEYS if kind != "plateau" else ()))
    aliased: set[str] = set()
    for key in table:
        if key in allowed:
            continue
        known_as = _ALIASES.get(str(key))
        if known_as is not None and known_as in allowed and known_as not in table:
            aliased.add(known_as)
            problems.append(
                f"{key}: unknown key for a {kind} schedule; orch calls it {known_as}: write "
                f"{known_as} = {table[key]!r}."
            )
            continue
        problems.append(
            f"{key}: unknown key for a {kind} schedule; expected one of "
            f"{', '.join(allowed)}.{did_you_mean(str(key), allowed)}"
        )
    reader = _Reader(table, problems, frozenset(aliased))
    schedule = _BUILDERS[kind](reader)
    warmup = reader.integer("warmup_epochs", 0) if kind != "plateau" else 0
    start = reader.number("warmup_start_factor", 0.1, ge=0) if kind != "plateau" else 0.1
    if start is not None and start > 1:
        problems.append(f"warmup_start_factor: must be <= 1. Received: {start!r}")
    if problems or schedule is None:
        raise SpecError(problems or [f"kind: cannot build a {kind} schedule."])
    if warmup:
        return WarmupSchedule(schedule, warmup, start)  # type: ignore[arg-type]
    return schedule
