"""The recipe's rules, once: optimizer kinds, weight-decay modes, precisions, and the rules
that tie recipe fields together. Pure (no TensorFlow).

`orch validate` / `orch plan` run these through `spec.checks`; the trial process never
checks again: it builds what the spec parsed (`training.optimizers.make_optimizer` calls
`optimizer_problems` only to guard direct callers, with the same messages).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
WEIGHT_DECAY_MODES: tuple[str, ...] = ("l2", "decoupled")
PRECISIONS: tuple[str, ...] = ("float32", "mixed_float16", "mixed_bfloat16")

# What a user means by the optimizer's name: AdamW *is* Adam with decoupled weight decay,
# so `optimizer = "adamw"` alone decays in the optimizer. sgd and adam keep the seeds' L2.
_DEFAULT_MODE = {"adamw": "decoupled"}


def default_weight_decay_mode(optimizer: Any, weight_decay: Any) -> str:
    """The mode a recipe gets when it does not set `weight_decay_mode`.

    With nothing to decay (weight_decay = 0) the two modes train the same model, and the
    mode stays "l2" as it always was, so such a trial keeps its content key.
    """
    number = isinstance(weight_decay, int | float) and not isinstance(weight_decay, bool)
    if number and weight_decay == 0:
        return "l2"
    return _DEFAULT_MODE.get(optimizer, "l2") if isinstance(optimizer, str) else "l2"


def cross_field_problems(recipe: Mapping[str, Any]) -> list[str]:
    """Rules that no single recipe key breaks alone; `recipe` holds resolved values.

    Messages start at the key path inside the recipe ("weight_decay_mode: ...").
    """
    problems: list[str] = []
    kind, mode, wd = (recipe.get(k) for k in ("optimizer", "weight_decay_mode", "weight_decay"))
    decays = isinstance(wd, int | float) and not isinstance(wd, bool) and wd > 0
    if kind == "adamw" and mode == "l2" and decays:
        problems.append(
            "weight_decay_mode: adamw decays weights in the optimizer; set "
            'weight_decay_mode = "decoupled" (the default for adamw), or use optimizer = '
            f'"adam" for L2. Received: weight_decay_mode={mode!r}'
        )
    return problems
