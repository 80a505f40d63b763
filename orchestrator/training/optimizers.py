"""Optimizers and where weight decay goes (the optimizer, or the model's kernels).

Two recipes that are easy to confuse:

  "l2"         the seeds': keras.regularizers.L2(wd) on conv and dense kernels, which adds
               wd * sum(w^2) to the loss (gradient 2 * wd * w, i.e. PyTorch
               weight_decay = 2 * wd). The optimizer gets no weight decay; the caller
               passes `model_l2` to the zoo's `weight_decay` argument.
  "decoupled"  AdamW-style: the optimizer shrinks each kernel by lr * wd per step,
               outside the gradient. The model gets no L2 (`model_l2 = 0`). Biases and
               BatchNorm gamma/beta are excluded, as the seeds' L2 excluded them.

Importing this module does not import TensorFlow; `make_optimizer` imports Keras.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from orchestrator.errors import SpecError, did_you_mean

OPTIMIZER_KINDS: tuple[str, ...] = ("sgd", "adam", "adamw")
WEIGHT_DECAY_MODES: tuple[str, ...] = ("l2", "decoupled")
# Variables the decoupled decay skips. Keras 3 checks `variable.name`, which is "bias" for
# a Keras variable but "dense/bias:0" for the tf.Variable the TF backend passes, so the
# pattern accepts both forms (and never matches e.g. "kernel" or "depthwise_kernel").
NO_DECAY_VARIABLES: tuple[str, ...] = (r"(?:^|/)(?:bias|gamma|beta)(?::\d+)?$",)


class OptimizerChoice(NamedTuple):
    """The optimizer, and the L2 factor the model's kernels must carry (0 when decoupled)."""

    optimizer: Any  # keras.optimizers.Optimizer (not imported here: no TF at import time)
    model_l2: float


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_optimizer(
    kind: str,
    *,
    lr: float,
    momentum: float = 0.9,
    nesterov: bool = True,
    weight_decay: float = 0.0,
    weight_decay_mode: str = "l2",
) -> None:
    """Raise SpecError listing every bad argument (pure: usable by spec validation)."""
    problems = []
    if kind not in OPTIMIZER_KINDS:
        problems.append(
            f"optimizer: must be one of {', '.join(OPTIMIZER_KINDS)}. Received: "
            f"optimizer={kind!r}.{did_you_mean(str(kind), OPTIMIZER_KINDS)}"
        )
    if not _is_number(lr) or not lr > 0:
        problems.append(f"lr: must be > 0. Received: lr={lr!r}")
    if not _is_number(momentum) or not 0 <= momentum < 1:
        problems.append(f"momentum: must be in [0, 1). Received: momentum={momentum!r}")
    if not isinstance(nesterov, bool):
        problems.append(f"nesterov: must be true or false. Received: nesterov={nesterov!r}")
    if not _is_number(weight_decay) or not weight_decay >= 0:
        problems.append(f"weight_decay: must be >= 0. Received: weight_decay={weight_decay!r}")
    if weight_decay_mode not in WEIGHT_DECAY_MODES:
        problems.append(
            f"weight_decay_mode: must be one of {', '.join(WEIGHT_DECAY_MODES)}. "
            f"Received: weight_decay_mode={weight_decay_mode!r}."
            f"{did_you_mean(str(weight_decay_mode), WEIGHT_DECAY_MODES)}"
        )
    elif (
        kind == "adamw"
        and weight_decay_mode == "l2"
        and _is_number(weight_decay)
        and weight_decay > 0
    ):
        problems.append(
            "weight_decay_mode: adamw decays weights in the optimizer; set "
            'weight_decay_mode = "decoupled", or use optimizer = "adam" for L2. '
            "Received: weight_decay_mode='l2'"
        )
    if problems:
        raise SpecError(problems)


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
