"""Pure building blocks of the zoo: preset and family records, argument checks.

Nothing here imports TensorFlow or Keras: `orch validate` and `orch plan` read presets and
check model arguments without paying for a TensorFlow import.
"""

from __future__ import annotations

import inspect
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
    # The published figure as printed ("1.7M"); its precision sets the test tolerance.
    published_label: str | None = None
    published_source: str | None = None
    default_input_shape: tuple[int, int, int] = CIFAR_SHAPE
    default_num_classes: int = 10
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def published_params(self) -> int | None:
        """The published parameter count, read from its label."""
        return None if self.published_label is None else parse_label(self.published_label)


Rule = Callable[[str, Mapping[str, Any], "tuple[int, ...] | None"], list[str]]
# Arguments that select a variant of an architecture rather than define it: a preset,
# which fixes its architecture, still takes them.
VARIANTS = frozenset({"seed_variant", "weights"})


@dataclass(frozen=True)
class Family:
    """A model family: its builder, its arguments and their checks.

    `body(ly, inputs, **arguments)` describes the architecture once: it calls the layer
    interface `ly` (zoo/backend.py) and returns the softmax output. Run on Keras it makes
    the model; run on the counting backend (zoo/counting.py) it gives params, MACs,
    per-layer costs and the input-size check. Its keyword parameters are the family's own
    arguments, with their defaults, and (but for `VARIANTS`) they define the architecture;
    `settings` holds the defaults of those every layer shares (weight_decay,
    kernel_initializer, bn_momentum, bn_epsilon, dropout). `rules(model, kwargs,
    input_shape)` each return problems (strings in the Keras "Received:" style) beyond
    those `check_common` finds. The family is named for its body unless `name` says
    otherwise; `defaults` overrides argument defaults (se_resnext: se=True).
    """

    description: str
    body: Callable[..., Any]
    settings: Mapping[str, Any] = field(hash=False)
    rules: tuple[Rule, ...] = ()
    name: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.body.__name__)

    def _own(self) -> dict[str, Any]:
        params = inspect.signature(self.body).parameters.values()
        return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}

    @property
    def arch_keys(self) -> frozenset[str]:
        """The arguments that change the architecture (and so params and MACs)."""
        return frozenset(self._own()) - VARIANTS

    def arguments(self) -> dict[str, Any]:
        """The family's arguments and their defaults."""
        return {**self._own(), **self.settings, **self.defaults}

    def build(self, inputs: Any, *, num_classes: int, **kwargs: Any) -> Any:
        """The softmax output for `inputs`: a Keras tensor, or a counting `Sym`."""
        from orchestrator.zoo.backend import layers_for

        args = {**self.arguments(), **kwargs}
        shared = {_SETTING.get(k, k): args.pop(k) for k in self.settings}
        return self.body(layers_for(inputs, num_classes=num_classes, **shared), inputs, **args)

    def check(
        self, model: str, input_shape: tuple[int, ...] | None, num_classes: int, kwargs: Mapping
    ) -> list[str]:
        """Every problem with the complete arguments `kwargs` (defaults filled in)."""
        problems = check_common(model, kwargs)
        for rule in self.rules:
            problems += rule(model, kwargs, input_shape)
        return problems

    def preset(
        self,
        name: str,
        description: str,
        counts: tuple[int, int],
        published: tuple[str, str] | None = None,
        **kwargs: Any,
    ) -> ModelInfo:
        """A preset of this family: exact (params, MACs) and the published (label, source)."""
        label, source = published or (None, None)
        return ModelInfo(name, self.name, description, *counts, label, source, kwargs=kwargs)


def typed(**kinds: type) -> Rule:
    """The check that each named argument is an integer >= 1 (int) or a boolean (bool)."""

    def rule(model: str, kwargs: Mapping[str, Any], input_shape: Any) -> list[str]:
        problems: list[str] = []
        for arg, kind in kinds.items():
            check = check_bool if kind is bool else check_int
            problems += check(model, arg, kwargs[arg])
        return problems

    return rule


# A model argument whose name differs from the layer setting it fills.
_SETTING = {"dropout": "dropout_rate"}
# BN as the PyTorch seeds have it (momentum 0.1 there is Keras' 0.9); Keras' own is 0.99 / 1e-3.
TORCH_BN: Mapping[str, float] = {"bn_momentum": 0.9, "bn_epsilon": 1e-5}
KERAS_BN: Mapping[str, float] = {"bn_momentum": 0.99, "bn_epsilon": 1e-3}


def depth_rule(step: int, offset: int, examples: str) -> Rule:
    """The check of a depth of the form step * n + offset with n >= 1."""

    def rule(model: str, kwargs: Mapping[str, Any], input_shape: Any) -> list[str]:
        depth = kwargs["depth"]
        if check_int(model, "depth", depth, minimum=step + offset) or (depth - offset) % step:
            form = f"must be {step}n+{offset} with n >= 1 ({examples}, ...)"
            return [received(model, "depth", form, depth)]
        return []

    return rule


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


# Keras initializers that can fill a conv or dense kernel, with the config keys each takes
# (keras.initializers.get accepts the snake_case name or the class name). Not identity
# (2-D only) or STFT (for STFT layers). A test builds every one of them with Keras.
_SEED = ("seed",)
KERNEL_INITIALIZERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "glorot_normal": ("GlorotNormal", _SEED),
    "glorot_uniform": ("GlorotUniform", _SEED),
    "he_normal": ("HeNormal", _SEED),
    "he_uniform": ("HeUniform", _SEED),
    "lecun_normal": ("LecunNormal", _SEED),
    "lecun_uniform": ("LecunUniform", _SEED),
    "orthogonal": ("Orthogonal", ("gain", "seed")),
    "random_normal": ("RandomNormal", ("mean", "stddev", "seed")),
    "random_uniform": ("RandomUniform", ("minval", "maxval", "seed")),
    "truncated_normal": ("TruncatedNormal", ("mean", "stddev", "seed")),
    "variance_scaling": ("VarianceScaling", ("scale", "mode", "distribution", "seed")),
    "zeros": ("Zeros", ()),
    "ones": ("Ones", ()),
    "constant": ("Constant", ("value",)),
}
_BY_CLASS = {cls: (name, keys) for name, (cls, keys) in KERNEL_INITIALIZERS.items()}
# Config keys without a default: Keras raises KeyError for "constant" given by name alone.
_REQUIRED = {"constant": ("value",)}


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform", "normal")


def _config_ok(key: str, value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if key == "seed":
        return value is None or (number and isinstance(value, int) and value >= 0)
    if key == "mode":
        return value in _MODES
    if key == "distribution":
        return value in _DISTRIBUTIONS
    if key == "scale":
        return number and math.isfinite(value) and value > 0
    return number and math.isfinite(value)


def _snake(name: Any) -> str | None:
    """An initializer's snake_case name from either spelling; None if unknown."""
    if not isinstance(name, str):
        return None
    return name if name in KERNEL_INITIALIZERS else _BY_CLASS.get(name, (None,))[0]


def check_initializer(model: str, init: Any) -> list[str]:
    """A kernel initializer: a known name, a {class_name, config} table, or an object."""
    from orchestrator.errors import did_you_mean

    arg = "kernel_initializer"
    if hasattr(init, "get_config") and not isinstance(init, str | dict):
        return []  # a Keras initializer object, from Python
    if isinstance(init, str):
        if (name := _snake(init)) is None:
            rule = "unknown initializer; known: " + ", ".join(KERNEL_INITIALIZERS)
            hint = did_you_mean(init, [*KERNEL_INITIALIZERS, *_BY_CLASS])
            return [received(model, arg, rule, init) + "." + hint]
        if required := _REQUIRED.get(name):
            cls = KERNEL_INITIALIZERS[name][0]
            rule = f'needs a {required[0]}: write {{ class_name = "{cls}", config = {{ ... }} }}'
            return [received(model, arg, rule, init)]
        return []
    if isinstance(init, dict):
        config, name = init.get("config", {}), _snake(init.get("class_name"))
        extra = set(init) - {"class_name", "config", "module", "registered_name"}
        if name is None or extra or not isinstance(config, dict):
            rule = "a table must be {class_name = <a known initializer>, config = {...}}"
            return [received(model, arg, rule, init)]
        cls, takes = KERNEL_INITIALIZERS[name]
        bad = [k for k, v in config.items() if k not in takes or not _config_ok(k, v)]
        bad += [k for k in _REQUIRED.get(name, ()) if k not in config]
        if bad:
            rule = (
                f"{cls} takes {', '.join(takes) or 'no config'} (numbers; a whole seed; "
                f"scale > 0; mode and distribution as in Keras); check {', '.join(map(str, bad))}"
            )
            return [received(model, arg, rule, init)]
        return []
    rule = "must be a Keras initializer name (e.g. 'he_normal'), config or object"
    return [received(model, arg, rule, init)]


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
        problems += check_initializer(model, kwargs["kernel_initializer"])
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
