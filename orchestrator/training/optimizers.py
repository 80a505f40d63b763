"""Optimizers and where weight decay goes (the optimizer, or the model's kernels).

Two recipes that are easy to confuse:

  "l2"         the seeds': keras.regularizers.L2(wd) on conv and dense kernels, which adds
               wd * sum(w^2) to the loss (gradient 2 * wd * w, i.e. PyTorch
               weight_decay = 2 * wd). The optimizer gets no weight decay; the caller
               passes `model_l2` to the zoo's `weight_decay` argument.
  "decoupled"  AdamW-style: the optimizer shrinks each kernel by lr * wd per step,
               outside the gradient. The model gets no L2 (`model_l2 = 0`). Biases and
               BatchNorm gamma/beta are excluded, as the seeds' L2 excluded them.

The rules (kinds, modes, ranges, adamw's mode) are the job file's, from `spec`: what
`orch validate` accepts is what builds here. Importing this module does not import
TensorFlow; `make_optimizer` / `optimizer_for` import Keras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from orchestrator.errors import SpecError
from orchestrator.spec import schema as s
from orchestrator.spec.recipe import OPTIMIZERS, WEIGHT_DECAY_MODES, cross_field_problems

if TYPE_CHECKING:
    from orchestrator.spec.model import Recipe

# The spec's names, under the names this module always exported.
OPTIMIZER_KINDS: tuple[str, ...] = OPTIMIZERS
__all__ = [
    "OPTIMIZER_KINDS",
    "WEIGHT_DECAY_MODES",
    "OptimizerChoice",
    "make_optimizer",
    "optimizer_for",
    "validate_optimizer",
]
# Variables the decoupled decay skips. Keras 3 checks `variable.name`, which is "bias" for
# a Keras variable but "dense/bias:0" for the tf.Variable the TF backend passes, so the
# pattern accepts both forms (and never matches e.g. "kernel" or "depthwise_kernel").
NO_DECAY_VARIABLES: tuple[str, ...] = (r"(?:^|/)(?:bias|gamma|beta)(?::\d+)?$",)
_OPTIMIZER_KEYS = ("optimizer", "lr", "momentum", "nesterov", "weight_decay", "weight_decay_mode")


class OptimizerChoice(NamedTuple):
    """The optimizer, and the L2 factor the model's kernels must carry (0 when decoupled)."""

    optimizer: Any  # keras.optimizers.Optimizer (not imported here: no TF at import time)
    model_l2: float


def validate_optimizer(
    kind: str,
    *,
    lr: float,
    momentum: float = 0.9,
    nesterov: bool = True,
    weight_decay: float = 0.0,
    weight_decay_mode: str = "l2",
) -> None:
    """Raise SpecError listing every bad argument, by the job file's own rules (the
    `[recipe]` schema and `spec.recipe.cross_field_problems`): one copy of each rule."""
    from orchestrator.spec.fields import RECIPE

    values = dict(
        zip(
            _OPTIMIZER_KEYS,
            (kind, lr, momentum, nesterov, weight_decay, weight_decay_mode),
            strict=True,
        )
    )
    problems: list[str] = []
    s.validate_table(values, RECIPE, "", "", problems)
    if not problems:
        problems += cross_field_problems(values)
    if problems:
        raise SpecError(problems)


def optimizer_for(recipe: Recipe) -> OptimizerChoice:
    """The optimizer of a spec's recipe, which `orch validate` has already checked."""
    return _build(
        recipe.optimizer,
        lr=recipe.lr,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
        weight_decay=recipe.weight_decay,
        weight_decay_mode=recipe.weight_decay_mode,
    )


def make_optimizer(
    kind: str,
    *,
    lr: float,
    momentum: float = 0.9,
    nesterov: bool = True,
    weight_decay: float = 0.0,
    weight_decay_mode: str = "l2",
) -> OptimizerChoice:
    """A Keras optimizer and the model-side L2 factor: `opt, model_l2 = make_optimizer(...)`.

    `momentum` and `nesterov` apply to SGD only (Adam keeps its default betas). The LR is
    a plain float variable: the trainer assigns each epoch's value from its schedule.
    """
    validate_optimizer(
        kind,
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
        weight_decay_mode=weight_decay_mode,
    )
    return _build(
        kind,
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
        weight_decay_mode=weight_decay_mode,
    )


def _build(
    kind: str,
    *,
    lr: float,
    momentum: float,
    nesterov: bool,
    weight_decay: float,
    weight_decay_mode: str,
) -> OptimizerChoice:
    import keras  # lazy: keeps this module importable without TensorFlow

    decoupled = weight_decay_mode == "decoupled" and weight_decay > 0
    # Keras treats weight_decay=None as "off"; AdamW's own default (0.004) must not leak in.
    opt_decay = float(weight_decay) if decoupled else None
    if kind == "sgd":
        optimizer = keras.optimizers.SGD(
            learning_rate=lr, momentum=momentum, nesterov=nesterov, weight_decay=opt_decay
        )
    elif kind == "adam":
        optimizer = keras.optimizers.Adam(learning_rate=lr, weight_decay=opt_decay)
    else:
        optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=opt_decay or 0.0)
    if decoupled:
        optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_VARIABLES))
    model_l2 = 0.0 if weight_decay_mode == "decoupled" else float(weight_decay)
    return OptimizerChoice(optimizer, model_l2)
