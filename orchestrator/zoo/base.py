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

# A spatial operation that changes the feature-map size: (label, kernel, stride, padding).
# "valid" needs an input at least `kernel` wide; "same" only divides (rounding up).
SpatialOp = tuple[str, int, int, str]


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
    `cost(input_shape, num_classes, kwargs)` returns (params, MACs per image) computed from
    shapes alone, mirroring `build`, for planning without TensorFlow.
    `arch_keys` are the arguments that change the architecture (and so params and MACs).
    """

    name: str
    description: str
    build: Callable[..., Any]
    check: Callable[[str, tuple[int, ...], int, Mapping[str, Any]], list[str]]
    cost: Callable[[tuple[int, int, int], int, Mapping[str, Any]], tuple[int, int]]
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


def _apply(size: int, op: SpatialOp) -> int | None:
    """Output size of one op, or None when the op cannot run on `size` pixels."""
    _, kernel, stride, padding = op
    if padding == "same":
        return math.ceil(size / stride)
    return None if size < kernel else (size - kernel) // stride + 1


def smallest_input(ops: Sequence[SpatialOp]) -> int:
    """The smallest side length for which every op yields at least one pixel."""
    size = 1
    while not _fits(size, ops):
        size += 1
    return size


def _fits(size: int, ops: Sequence[SpatialOp]) -> bool:
    for op in ops:
        out = _apply(size, op)
        if out is None or out < 1:
            return False
        size = out
    return True


def check_spatial(
    model: str, input_shape: Sequence[int] | None, ops: Sequence[SpatialOp]
) -> list[str]:
    """Rejects inputs too small for the network's poolings/strides (e.g. 8x8 into VGG19).

    `input_shape` None means it is malformed and already reported: nothing to add.
    """
    if input_shape is None:
        return []
    height, width = input_shape[0], input_shape[1]
    if _fits(height, ops) and _fits(width, ops):
        return []
    least = smallest_input(ops)
    labels = ", ".join(sorted({op[0] for op in ops}))
    rule = (
        f"is too small: its {len(ops)} size-reducing layers ({labels}) need a height and "
        f"width of at least {least}; resize the images or pick a model that downsamples less"
    )
    return [received(model, "input_shape", rule, tuple(input_shape))]


# ---------------------------------------------------------------------------- cost

Shape = tuple[int, int, int]


@dataclass
class Tally:
    """Parameters and MACs of a network counted from shapes alone (no TensorFlow).

    Counts like `model.count_params()` (BN: gamma, beta and both moving statistics) and
    like `counting.count_macs` (conv and dense multiplies per image). Each family's `cost`
    walks its architecture through these methods, mirroring its builder.
    """

    params: int = 0
    macs: int = 0

    def conv(
        self,
        shape: Shape,
        filters: int,
        kernel: int,
        *,
        strides: int = 1,
        padding: str = "same",
        bias: bool = False,
        groups: int = 1,
    ) -> Shape:
        height, width, channels = shape
        op = ("conv", kernel, strides, padding)
        out_h, out_w = _apply(height, op), _apply(width, op)
        assert out_h and out_w, "input too small: check_spatial should have caught it"
        weights = kernel * kernel * (channels // groups) * filters
        self.params += weights + (filters if bias else 0)
        self.macs += out_h * out_w * weights
        return (out_h, out_w, filters)

    def bn(self, shape: Shape) -> Shape:
        self.params += 4 * shape[-1]
        return shape

    def dense(self, features: int, units: int, *, bias: bool = True) -> int:
        self.params += features * units + (units if bias else 0)
        self.macs += features * units
        return units

    @staticmethod
    def pool(shape: Shape, kernel: int, strides: int, padding: str = "valid") -> Shape:
        op = ("pool", kernel, strides, padding)
        out_h, out_w = _apply(shape[0], op), _apply(shape[1], op)
        assert out_h and out_w, "input too small: check_spatial should have caught it"
        return (out_h, out_w, shape[2])
