"""The model registry: preset and family names -> checked arguments -> Keras models.

Importing this module imports no TensorFlow or Keras; only `create_model` does, lazily.
`list_models`, `get_preset`, `check_model` and `estimate_cost` are pure, for
`orch validate` / `orch plan`.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.errors import SpecError, UnknownModelError, did_you_mean
from orchestrator.zoo import densenet, lenet, nin, resnet, resnext, vgg, wrn
from orchestrator.zoo.base import (
    Family,
    ModelInfo,
    check_shape_and_classes,
    received,
    smallest_input,
    too_small,
)
from orchestrator.zoo.counting import TooSmall, Walk, walk

if TYPE_CHECKING:
    import keras

_MODULES = (lenet, nin, vgg, resnet, wrn, resnext, densenet)

FAMILIES: dict[str, Family] = {
    family.name: family
    for module in _MODULES
    for family in getattr(module, "FAMILIES", (module.FAMILY,))
}
PRESETS: dict[str, ModelInfo] = {p.name: p for module in _MODULES for p in module.PRESETS}


@dataclass(frozen=True)
class ModelConfig:
    """A fully resolved model request: every builder argument filled in and checked."""

    name: str
    family: str
    num_classes: int
    input_shape: tuple[int, int, int]
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)


def list_models(pattern: str = "*") -> list[str]:
    """Preset names matching the shell-style `pattern` (e.g. "resnet*"), sorted."""
    return sorted(fnmatch.filter(PRESETS, pattern.lower()))


def list_families() -> list[str]:
    """Family names, which `create_model` also accepts together with their arguments."""
    return sorted(FAMILIES)


def get_preset(name: str) -> ModelInfo:
    """The preset called `name`; UnknownModelError (with suggestions) if there is none.

    Family names ("densenet") are not presets: `estimate_cost` sizes any request.
    """
    try:
        return PRESETS[name]
    except KeyError:
        error = UnknownModelError(name, PRESETS)
        if name in FAMILIES:
            examples = ", ".join(list_models(name + "*")[:3])
            error.args = (
                f"{name!r} is a model family, not a preset: it has no fixed size; use "
                f"estimate_cost({name!r}, ...) or a preset such as {examples}",
            )
        raise error from None


def family_arguments(family: str) -> dict[str, Any]:
    """A family's model arguments and their defaults."""
    return FAMILIES[family].arguments()


def check_model(
    name: str,
    *,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    **overrides: Any,
) -> list[str]:
    """Every problem with this model request, as messages; [] when it can be built."""
    try:
        resolve_model(name, num_classes=num_classes, input_shape=input_shape, **overrides)
    except SpecError as err:
        return err.problems
    except UnknownModelError as err:
        return [str(err)]
    return []


def resolve_model(
    name: str,
    *,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    **overrides: Any,
) -> ModelConfig:
    """Checks a request without building it. Raises UnknownModelError or SpecError."""
    preset = PRESETS.get(name)
    if preset is None and name not in FAMILIES:
        raise UnknownModelError(name, [*PRESETS, *FAMILIES])
    family = FAMILIES[preset.family if preset else name]
    if num_classes is None:
        num_classes = preset.default_num_classes if preset else 10
    if input_shape is None:
        input_shape = preset.default_input_shape if preset else (32, 32, 3)
    problems, accepted = _override_problems(name, preset, family, overrides)
    shape_problems, shape_ok = check_shape_and_classes(name, input_shape, num_classes)
    problems += shape_problems
    kwargs = {**family_arguments(family.name), **(preset.kwargs if preset else {}), **accepted}
    # Family checks still run after other problems, so that all are reported together.
    shape = tuple(int(d) for d in input_shape) if shape_ok else None
    problems += family.check(name, shape, num_classes, kwargs)
    if not problems and shape is not None:
        problems += _size_problems(name, family, shape, num_classes, kwargs)
    if problems:
        raise SpecError(problems)
    return ModelConfig(name, family.name, num_classes, shape, kwargs)  # type: ignore[arg-type]


def _size_problems(
    name: str, family: Family, shape: tuple[int, ...], num_classes: int, kwargs: Mapping[str, Any]
) -> list[str]:
    """Is the input large enough for the network's poolings and strides? The builder itself,
    on the counting backend, says so (no separate list of size-reducing layers to keep)."""

    def fits(height: int, width: int) -> TooSmall | None:
        try:
            walk(family.build, (height, width, shape[2]), num_classes, **kwargs)
        except TooSmall as err:
            return err
        return None

    if fits(shape[0], shape[1]) is None:
        return []
    labels = _reducing(family, shape[2], num_classes, kwargs)
    least = max(
        smallest_input(lambda side: fits(side, 4096) is None),
        smallest_input(lambda side: fits(4096, side) is None),
    )
    return [too_small(name, shape, labels, least)]


def _reducing(family: Family, channels: int, num_classes: int, kwargs: Mapping[str, Any]) -> list:
    try:
        return walk(family.build, (4096, 4096, channels), num_classes, **kwargs).reducing
    except TooSmall as err:  # never on 4096 px, but say something useful if so
        return [err.label]


def _override_problems(
    name: str, preset: ModelInfo | None, family: Family, overrides: Mapping[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    """Problems with the override names, and the overrides that are acceptable."""
    known = family_arguments(family.name)
    # A preset fixes its architecture, unless its name is also the family's ("nin").
    fixed = preset.kwargs if preset is not None and preset.name != family.name else None
    problems: list[str] = []
    for key, value in overrides.items():
        if key not in known:
            problems.append(
                f"{name}: {key}: unknown argument.{did_you_mean(key, known)} Valid arguments: "
                f"{', '.join(sorted(known))}. Received: {key}={value!r}"
            )
        elif fixed is not None and key in family.arch_keys and fixed.get(key, known[key]) != value:
            rule = (
                f"is fixed by the preset ({key}={fixed.get(key, known[key])!r}); to "
                f"change it, create the family: create_model({family.name!r}, {key}=...)"
            )
            problems.append(received(name, key, rule, value))
    bad = {p.split(": ")[1] for p in problems}
    return problems, {k: v for k, v in overrides.items() if k not in bad}


@dataclass(frozen=True)
class Cost:
    """Size and compute of one model request: `model.count_params()` and MACs per image."""

    params: int
    macs: int


def estimate_cost(
    name: str,
    *,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    **overrides: Any,
) -> Cost:
    """Exact params and MACs of what `create_model` would build, from shapes alone (no TF).

    For planning: works for presets with any input shape, class count or seed_variant, and
    for family configurations. Raises like `create_model`.
    """
    layers = architecture(name, num_classes=num_classes, input_shape=input_shape, **overrides)
    return Cost(layers.params, layers.macs)


def architecture(
    name: str,
    *,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    **overrides: Any,
) -> Walk:
    """Every layer of what `create_model` would build, with its params, MACs and the
    activation elements it reads and writes per image: the family's own builder run on the
    counting backend (zoo/counting.py). Raises like `create_model`."""
    config = resolve_model(name, num_classes=num_classes, input_shape=input_shape, **overrides)
    frozen = _freeze(config.kwargs)
    return _walk_config(config.family, config.input_shape, config.num_classes, frozen)


def _freeze(kwargs: Mapping[str, Any]) -> tuple:
    def f(v: Any) -> Any:
        if isinstance(v, list | tuple):
            return ("__seq__", tuple(f(x) for x in v))
        if isinstance(v, dict):
            return ("__map__", tuple(sorted((k, f(x)) for k, x in v.items())))
        return v

    return tuple(sorted((k, f(v)) for k, v in kwargs.items()))


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__seq__":
        return [_thaw(x) for x in value[1]]
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__map__":
        return {k: _thaw(x) for k, x in value[1]}
    return value


@functools.lru_cache(maxsize=1024)
def _walk_config(family: str, shape: tuple, num_classes: int, frozen: tuple) -> Walk:
    """Cached: a 10,000-trial grid has few distinct architectures. Callers must not mutate."""
    kwargs = {k: _thaw(v) for k, v in frozen}
    return walk(FAMILIES[family].build, shape, num_classes, **kwargs)


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    **overrides: Any,
) -> keras.Model:
    """Builds a preset (e.g. "resnet20") or a family with its arguments, e.g.
    `create_model("densenet", depth=100, growth_rate=12, bottleneck=True, compression=0.5)`.

    `num_classes` / `input_shape` default to the preset's (10 and (32, 32, 3) for the CIFAR
    nets, 1000 and (224, 224, 3) for the ImageNet DenseNets). The model outputs softmax
    probabilities in float32, for sparse_categorical_crossentropy with integer labels.
    Raises UnknownModelError for an unknown name and SpecError for bad arguments.
    """
    config = resolve_model(name, num_classes=num_classes, input_shape=input_shape, **overrides)
    return build_model(config)


def build_model(config: ModelConfig) -> keras.Model:
    """Builds a resolved config (see `resolve_model`)."""
    import keras

    family = FAMILIES[config.family]
    inputs = keras.Input(shape=config.input_shape, name="input")
    try:
        outputs = family.build(inputs, num_classes=config.num_classes, **config.kwargs)
    except ValueError as err:  # e.g. an unknown initializer name reaching Keras
        raise SpecError(f"{config.name}: cannot build the model: {err}") from err
    model = keras.Model(inputs, outputs, name=config.name)
    if config.kwargs.get("weights"):  # pretrained weights, once the layers exist
        from orchestrator.zoo.pretrained import load_pretrained

        load_pretrained(model, config)
    return model
