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

import dataclasses
from collections.abc import Mapping
from typing import Any

from orchestrator.zoo.backend import Backend
from orchestrator.zoo.base import TORCH_BN, Family, check_int, depth_rule, received, typed
from orchestrator.zoo.blocks import residual, stages

_EXPANSION = 4  # block output = 4 * planes


def resnext(
    ly: Backend,
    x: Any,
    *,
    depth: int = 29,
    cardinality: int = 8,
    base_width: int = 64,
    se: bool = False,
    se_reduction: int = 16,
    seed_variant: bool = False,
) -> Any:
    """ResNeXt-`depth` (`cardinality` x `base_width`d), SE with `se`: -> probabilities."""

    def block(ly: Backend, x: Any, planes: int, strides: int, name: str) -> Any:
        inner = planes * base_width // 64 * cardinality
        y = ly.bn_relu(ly.conv(x, inner, 1, f"{name}_conv1"), f"{name}_conv1")
        y = ly.conv(y, inner, 3, f"{name}_conv2", strides=strides, groups=cardinality)
        y = ly.bn_relu(y, f"{name}_conv2")
        y = ly.bn(ly.conv(y, _EXPANSION * planes, 1, f"{name}_conv3"), f"{name}_conv3_bn")
        if seed_variant:  # the seed's extra ReLU on the residual branch
            y = ly.relu(y, f"{name}_conv3_relu")
        if se:
            y = _squeeze_excite(ly, y, se_reduction, f"{name}_se")
        return ly.relu(
            residual(ly, x, y, strides, name, bn=True, always=seed_variant), f"{name}_out"
        )

    x = ly.bn_relu(ly.conv(x, 64, 3, "stem_conv"), "stem")
    x = stages(ly, x, (64, 128, 256), (depth - 2) // 9, block)
    return ly.classifier(ly.global_pool(x), use_bias=se)


def _squeeze_excite(ly: Backend, x: Any, reduction: int, name: str) -> Any:
    """Channel attention: GAP -> Dense(C/r, ReLU) -> Dense(C, sigmoid) -> x * weights."""
    channels = x.shape[-1]
    w = ly.global_pool(x, f"{name}_pool", keepdims=True)
    w = ly.dense(w, channels // reduction, f"{name}_reduce", use_bias=False, activation="relu")
    w = ly.dense(w, channels, f"{name}_expand", use_bias=False, activation="sigmoid")
    return ly.multiply([x, w], f"{name}_scale")


_DEPTH = depth_rule(9, 2, "11, 20, 29, 38")


def _rules(model: str, kwargs: Mapping[str, Any], input_shape: Any) -> list[str]:
    reduction = kwargs["se_reduction"]
    problems = []
    if kwargs["se"] is True and not check_int(model, "se_reduction", reduction) and reduction > 256:
        rule = "must be at most 256 (the narrowest block has 256 channels)"
        problems.append(received(model, "se_reduction", rule, reduction))
    return problems + _DEPTH(model, kwargs, input_shape)


FAMILY = Family(
    "ResNeXt for CIFAR (9n+2, grouped 3x3 bottlenecks); se=True adds SE blocks",
    resnext,
    {"weight_decay": 5e-4, "kernel_initializer": "he_normal", **TORCH_BN},
    (typed(se=bool, cardinality=int, base_width=int, se_reduction=int), _rules),
)
SE_FAMILY = dataclasses.replace(
    FAMILY,
    description="SE-ResNeXt for CIFAR: ResNeXt with squeeze-and-excitation (reduction 16)",
    name="se_resnext",
    defaults={"se": True},
)
FAMILIES = (FAMILY, SE_FAMILY)

_PAPER = "Xie et al. 2017 (arXiv 1611.05431) Table 7"
_SEED = "the seed README's 20M counts its projection on every block (seed_variant=True)"


def _preset(cardinality: int, se: bool, counts: tuple[int, int], label: str | None) -> Any:
    family, kind = (SE_FAMILY, "SE-ResNeXt-29") if se else (FAMILY, "ResNeXt-29")
    note = "" if label else f"; {_SEED}"
    return family.preset(
        f"{family.name}29_{cardinality}x64d",
        f"{kind} {cardinality}x64d, L2 5e-4{note}",
        counts,
        (label, _PAPER) if label else None,
        cardinality=cardinality,
        base_width=64,
    )


PRESETS = (
    _preset(4, False, (17_598_400, 2_736_465_920), None),
    _preset(8, False, (34_484_160, 5_387_266_048), "34.4M"),
    _preset(16, False, (68_255_680, 10_688_866_304), "68.1M"),
    _preset(4, True, (18_114_506, 2_736_982_016), None),
)
