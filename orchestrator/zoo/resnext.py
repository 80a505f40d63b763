"""ResNeXt-29 (Xie et al. 2017, arXiv 1611.05431) and SE-ResNeXt-29 (Hu et al. 2018,
arXiv 1709.01507) for CIFAR, as in the seed (6_ResNeXt, 8_SENet), with a real grouped conv.

Stem Conv3x3 64 -> BN -> ReLU; three stages of (depth-2)/9 bottleneck blocks, planes
64/128/256, strides 1/2/2, output 4 * planes. Block: Conv1x1(D*C) -> BN -> ReLU ->
Conv3x3(D*C, groups=C, stride) -> BN -> ReLU -> Conv1x1(4*planes) -> BN -> [SE] -> add ->
ReLU, with D = planes * base_width / 64. The shortcut is Conv1x1(stride) + BN where the block
changes width or resolution (the first block of every stage), else the identity, as in the
paper. SE: GAP -> Dense(C/16, ReLU) -> Dense(C, sigmoid) -> scale, no biases. Head GAP ->
Dense (no bias for ResNeXt, bias for SE-ResNeXt, as in the seeds). Convs: no bias, he_normal,
L2 5e-4; BN 0.9 / 1e-5.

seed_variant=True rebuilds the seed's code: a projection shortcut on EVERY block (its
IN_PLANES never updates; the README's "20M" for 4x64d counts this: 20,365,248, and
20,881,354 with SE) and a ReLU on the residual branch before the add (SE after it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.zoo.base import (
    Family,
    ModelInfo,
    check_bool,
    check_common,
    check_int,
    layers_for,
    parse_label,
    received,
)

_EXPANSION = 4  # block output = 4 * planes


def resnext(
    inputs: Any,
    *,
    num_classes: int = 10,
    depth: int = 29,
    cardinality: int = 8,
    base_width: int = 64,
    se: bool = False,
    se_reduction: int = 16,
    weight_decay: float = 5e-4,
    kernel_initializer: Any = "he_normal",
    bn_momentum: float = 0.9,
    bn_epsilon: float = 1e-5,
    seed_variant: bool = False,
) -> Any:
    """ResNeXt-`depth` (`cardinality` x `base_width`d), SE with `se`: -> probabilities."""
    ly = layers_for(inputs, weight_decay, kernel_initializer, bn_momentum, bn_epsilon)
    x = ly.bn_relu(ly.conv(inputs, 64, 3, "stem_conv"), "stem")
    blocks = (depth - 2) // 9
    for stage, planes in enumerate((64, 128, 256)):
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            name = f"stage{stage + 1}_block{block + 1}"
            group_width = planes * base_width // 64
            spec = (planes, group_width, cardinality, strides)
            x = _block(ly, x, spec, se_reduction if se else 0, seed_variant, name)
    return ly.classifier(ly.global_pool(x), num_classes, use_bias=se)


def _block(
    ly: Any, x: Any, spec: tuple[int, int, int, int], reduction: int, seed: bool, name: str
) -> Any:
    planes, group_width, cardinality, strides = spec
    inner, out = group_width * cardinality, _EXPANSION * planes
    y = ly.bn_relu(ly.conv(x, inner, 1, f"{name}_conv1"), f"{name}_conv1")
    y = ly.conv(y, inner, 3, f"{name}_conv2", strides=strides, groups=cardinality)
    y = ly.bn_relu(y, f"{name}_conv2")
    y = ly.bn(ly.conv(y, out, 1, f"{name}_conv3"), f"{name}_conv3_bn")
    if seed:  # the seed's extra ReLU on the residual branch (bug A2)
        y = ly.relu(y, f"{name}_conv3_relu")
    if reduction:
        y = _squeeze_excite(ly, y, reduction, f"{name}_se")
    shortcut = x
    if seed or strides != 1 or x.shape[-1] != out:
        shortcut = ly.conv(x, out, 1, f"{name}_shortcut", strides=strides)
        shortcut = ly.bn(shortcut, f"{name}_shortcut_bn")
    return ly.relu(ly.add([shortcut, y], f"{name}_add"), f"{name}_out")


def _squeeze_excite(ly: Any, x: Any, reduction: int, name: str) -> Any:
    """Channel attention: GAP -> Dense(C/r, ReLU) -> Dense(C, sigmoid) -> x * weights."""
    channels = x.shape[-1]
    w = ly.global_pool(x, f"{name}_pool", keepdims=True)
    w = ly.dense(w, channels // reduction, f"{name}_reduce", use_bias=False, activation="relu")
    w = ly.dense(w, channels, f"{name}_expand", use_bias=False, activation="sigmoid")
    return ly.multiply([x, w], f"{name}_scale")


def check(
    model: str, input_shape: tuple[int, ...], num_classes: int, kwargs: Mapping[str, Any]
) -> list[str]:
    problems = check_common(model, kwargs) + check_bool(model, "se", kwargs["se"])
    for arg in ("cardinality", "base_width", "se_reduction"):
        problems += check_int(model, arg, kwargs[arg])
    if not problems and kwargs["se"] and kwargs["se_reduction"] > 256:
        rule = "must be at most 256 (the narrowest block has 256 channels)"
        problems.append(received(model, "se_reduction", rule, kwargs["se_reduction"]))
    if not problems and kwargs["base_width"] < 1:
        problems.append(received(model, "base_width", "must be >= 1", kwargs["base_width"]))
    depth = kwargs["depth"]
    if check_int(model, "depth", depth, minimum=11) or (depth - 2) % 9:
        rule = "must be 9n+2 with n >= 1 (11, 20, 29, 38, ...)"
        problems.append(received(model, "depth", rule, depth))
    return problems


_ARCH = frozenset({"depth", "cardinality", "base_width", "se", "se_reduction"})
FAMILY = Family(
    name="resnext",
    description="ResNeXt for CIFAR (9n+2, grouped 3x3 bottlenecks); se=True adds SE blocks",
    build=resnext,
    check=check,
    arch_keys=_ARCH,
)
SE_FAMILY = Family(
    name="se_resnext",
    description="SE-ResNeXt for CIFAR: ResNeXt with squeeze-and-excitation (reduction 16)",
    build=resnext,
    check=check,
    arch_keys=_ARCH,
    defaults={"se": True},
)
FAMILIES = (FAMILY, SE_FAMILY)

_PAPER = "Xie et al. 2017 (arXiv 1611.05431) Table 7"
_SEED = "the seed README's 20M counts its projection on every block (seed_variant=True)"


def _preset(
    cardinality: int, se: bool, params: int, macs: int, label: str | None, note: str
) -> ModelInfo:
    prefix = "se_" if se else ""
    kind = "SE-ResNeXt-29" if se else "ResNeXt-29"
    return ModelInfo(
        name=f"{prefix}resnext29_{cardinality}x64d",
        family=f"{prefix}resnext",
        description=f"{kind} {cardinality}x64d, L2 5e-4{note}",
        params=params,
        macs=macs,
        published_params=None if label is None else parse_label(label),
        published_label=label,
        published_source=_PAPER if label else None,
        kwargs={"cardinality": cardinality, "base_width": 64},
    )


PRESETS = (
    _preset(4, False, 17_598_400, 2_736_465_920, None, f"; {_SEED}"),
    _preset(8, False, 34_484_160, 5_387_266_048, "34.4M", ""),
    _preset(16, False, 68_255_680, 10_688_866_304, "68.1M", ""),
    _preset(4, True, 18_114_506, 2_736_982_016, None, f"; {_SEED}"),
)
