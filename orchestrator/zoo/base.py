"""Pure building blocks of the zoo: preset and family records, argument checks.

Nothing here imports TensorFlow or Keras: `orch validate` and `orch plan` read presets and
check model arguments without paying for a TensorFlow import.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CIFAR_SHAPE: tuple[int, int, int] = (32, 32, 3)
IMAGENET_SHAPE: tuple[int, int, int] = (224, 224, 3)


@dataclass(frozen=True)
class ModelInfo:
    """A registered preset: how to build it and what it should count.

    `params` and `macs` are the exact `model.count_params()` (BN moving statistics included)
    and multiply-accumulates per image (Conv2D incl. groups, DepthwiseConv2D, Dense) at the
    preset's default input shape and class count. They are constants, checked against built
    models by the integration tests, so planning needs no TensorFlow.
    """

    name: str
    family: str
    description: str
    params: int
    macs: int
    published_params: int | None = None
    # The published figure as printed ("1.7M"); its precision sets the test tolerance.
    published_label: str | None = None
    published_source: str | None = None
    default_input_shape: tuple[int, int, int] = CIFAR_SHAPE
    default_num_classes: int = 10
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Family:
    """A model family: a tensor -> tensor builder and its pure argument check.

    `build(inputs, *, num_classes, **kwargs)` returns the softmax output tensor.
    `check(model, input_shape, num_classes, kwargs)` returns every problem found (strings in
    the Keras "Received:" style); `kwargs` holds the complete arguments (defaults filled in).
    Params, MACs, per-layer costs and the input-size check come from `build` itself, run
    on the counting backend (zoo/counting.py): the architecture is described once.
    `arch_keys` are the arguments that change the architecture (and so params and MACs).
    """

    name: str
    description: str
    build: Callable[..., Any]
    check: Callable[[str, tuple[int, ...], int, Mapping[str, Any]], list[str]]
    arch_keys: frozenset[str]
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)


def parse_label(label: str) -> int:
    """'62k' -> 62_000, '1.7M' -> 1_700_000, '793150' -> 793_150."""
    scale = {"k": 1_000, "M": 1_000_000, "G": 1_000_000_000}.get(label[-1:], 1)
    number = label[:-1] if scale != 1 else label
    return round(float(number) * scale)


def published_tolerance(label: str) -> float:
    """Allowed |count - published| / published: 2 %, or the rounding of the label if coarser.

    A paper's "1.7M" stands for anything in [1.65M, 1.75M); a 2 % test would reject the
    paper's own ResNet-110 (1.73M trainable), so half a unit of the last printed digit
    counts as agreement too.
    """
    digits = label.rstrip("kMG")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    scale = parse_label(label) / float(digits)
    half_unit = 0.5 * 10.0**-decimals * scale
    return max(0.02, half_unit / parse_label(label))


# ---------------------------------------------------------------------------- checks


def received(model: str, arg: str, rule: str, value: Any) -> str:
    """One problem in the house style: 'resnet: depth: must be 6n+2. Received: depth=21'."""
    return f"{model}: {arg}: {rule}. Received: {arg}={value!r}"


def check_int(model: str, arg: str, value: Any, minimum: int = 1) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return [received(model, arg, f"must be an integer >= {minimum}", value)]
    return []


def check_bool(model: str, arg: str, value: Any) -> list[str]:
    if not isinstance(value, bool):
        return [received(model, arg, "must be true or false", value)]
    return []


def check_float(
    model: str, arg: str, value: Any, low: float, high: float, *, high_open: bool = True
) -> list[str]:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = (
        ok
        and math.isfinite(value)
        and low <= value
        and (value < high if high_open else value <= high)
    )
    if not ok:
        bracket = ")" if high_open else "]"
        return [received(model, arg, f"must be a number in [{low}, {high}{bracket}", value)]
    return []


def check_common(model: str, kwargs: Mapping[str, Any]) -> list[str]:
    """Checks the arguments most families share, where present."""
    problems: list[str] = []
    if "weight_decay" in kwargs:
        problems += check_float(model, "weight_decay", kwargs["weight_decay"], 0.0, 1.0)
    if "dropout" in kwargs:
        problems += check_float(model, "dropout", kwargs["dropout"], 0.0, 1.0)
    if "bn_momentum" in kwargs:
        problems += check_float(model, "bn_momentum", kwargs["bn_momentum"], 0.0, 1.0)
    if "bn_epsilon" in kwargs:
        eps = kwargs["bn_epsilon"]
        if check_float(model, "bn_epsilon", eps, 0.0, 1.0) or eps == 0:
            problems.append(received(model, "bn_epsilon", "must be a number in (0, 1)", eps))
    if "kernel_initializer" in kwargs:
        init = kwargs["kernel_initializer"]
        if not (isinstance(init, str | dict) or hasattr(init, "get_config")):
            rule = "must be a Keras initializer name (e.g. 'he_normal'), config or object"
            problems.append(received(model, "kernel_initializer", rule, init))
    if "seed_variant" in kwargs:
        problems += check_bool(model, "seed_variant", kwargs["seed_variant"])
    return problems


def check_shape_and_classes(
    model: str, input_shape: Any, num_classes: Any
) -> tuple[list[str], bool]:
    """Problems with input_shape / num_classes, and whether the shape is usable at all."""
    problems = check_int(model, "num_classes", num_classes)
    shape_ok = (
        isinstance(input_shape, Sequence)
        and len(input_shape) == 3
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in input_shape)
    )
    if not shape_ok:
        rule = "must be (height, width, channels) with positive integers, channels last"
        problems.append(received(model, "input_shape", rule, input_shape))
    return problems, shape_ok


def smallest_input(fits: Callable[[int], bool], limit: int = 4096) -> int:
    """The smallest side length for which `fits(side)` holds (monotonic: a network that
    runs on n pixels runs on n + 1), by doubling then bisection."""
    high = 1
    while not fits(high):
        if high >= limit:
            return limit
        high *= 2
    low = high // 2  # fits(low) is false (or low == 0)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid, high)
    return high


def too_small(model: str, input_shape: Sequence[int], labels: Sequence[str], least: int) -> str:
    """The problem for an input smaller than the network's size-reducing layers allow."""
    kinds = ", ".join(sorted(set(labels)))
    rule = (
        f"is too small: its {len(labels)} size-reducing layers ({kinds}) need a height and "
        f"width of at least {least}; resize the images or pick a model that downsamples less"
    )
    return received(model, "input_shape", rule, tuple(input_shape))


def layers_for(
    inputs: Any,
    weight_decay: float,
    kernel_initializer: Any,
    bn_momentum: float = 0.99,
    bn_epsilon: float = 1e-3,
) -> Any:
    """The layer backend for `inputs`: counting on a shape (`counting.Sym`), else Keras.

    One builder per family serves both: the model, and its params, MACs, per-layer bytes
    and input-size check without TensorFlow.
    """
    from orchestrator.zoo.counting import CountingLayers, Sym

    if isinstance(inputs, Sym):
        return CountingLayers(weight_decay, kernel_initializer, bn_momentum, bn_epsilon)
    from orchestrator.zoo._layers import Layers

    return Layers(weight_decay, kernel_initializer, bn_momentum, bn_epsilon)
