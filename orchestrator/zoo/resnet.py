"""Pre-activation ResNet for CIFAR (He et al. 2016, "Identity Mappings", arXiv 1603.05027).

Depth 6n+2 with basic blocks, as in the seed (4_Residual_Network/ResNet_keras.py):
stem Conv3x3 16 (no BN/ReLU); three stages of n blocks with 16/32/64 filters at strides
1/2/2; block = BN-ReLU (o1) -> Conv3x3 -> BN-ReLU -> Conv3x3, plus the shortcut, nothing
after the add. The first block of stages 2 and 3 projects with Conv1x1(stride 2) applied to
o1 (the pre-activated input); every other shortcut is the identity. Head BN-ReLU-GAP-Dense.
Convs and the dense use bias, he_normal and L2 1e-4; BN momentum 0.9, epsilon 1e-5.
"resnet50" is the seed's htd/ 6n+2 net with n=8 (basic blocks), not ImageNet ResNet-50.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.zoo.base import (
    Family,
    ModelInfo,
    check_common,
    check_int,
    layers_for,
    parse_label,
    received,
)


def resnet(
    inputs: Any,
    *,
    num_classes: int = 10,
    depth: int = 20,
    base_filters: int = 16,
    weight_decay: float = 1e-4,
    kernel_initializer: Any = "he_normal",
    bn_momentum: float = 0.9,
    bn_epsilon: float = 1e-5,
) -> Any:
    """Pre-activation ResNet-`depth` (6n+2): `inputs` -> class probabilities (float32)."""
    ly = layers_for(inputs, weight_decay, kernel_initializer, bn_momentum, bn_epsilon)
    blocks = (depth - 2) // 6
    x = ly.conv(inputs, base_filters, 3, "stem_conv", use_bias=True)
    for stage in range(3):
        filters = base_filters * 2**stage
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _block(ly, x, filters, strides, f"stage{stage + 1}_block{block + 1}")
    x = ly.bn_relu(x, "head")
    return ly.classifier(ly.global_pool(x), num_classes)


def _block(ly: Any, x: Any, filters: int, strides: int, name: str) -> Any:
    pre = ly.bn_relu(x, f"{name}_preact")
    y = ly.conv(pre, filters, 3, f"{name}_conv1", strides=strides, use_bias=True)
    y = ly.bn_relu(y, f"{name}_mid")
    y = ly.conv(y, filters, 3, f"{name}_conv2", use_bias=True)
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = ly.conv(pre, filters, 1, f"{name}_shortcut", strides=strides, use_bias=True)
    return ly.add([shortcut, y], f"{name}_add")


def check(
    model: str, input_shape: tuple[int, ...], num_classes: int, kwargs: Mapping[str, Any]
) -> list[str]:
    problems = check_common(model, kwargs) + check_int(
        model, "base_filters", kwargs["base_filters"]
    )
    depth = kwargs["depth"]
    if check_int(model, "depth", depth, minimum=8) or (depth - 2) % 6:
        rule = "must be 6n+2 with n >= 1 (20, 32, 44, 56, 110, ...)"
        problems.append(received(model, "depth", rule, depth))
    return problems


FAMILY = Family(
    name="resnet",
    description="pre-activation ResNet (v2) for CIFAR, depth 6n+2, basic blocks",
    build=resnet,
    check=check,
    arch_keys=frozenset({"depth", "base_filters"}),
)

_PAPER = "He et al. 2016 (arXiv 1512.03385) Table 6"
_README = "BIGBALLON/cifar-10-cnn README"


def _preset(depth: int, params: int, macs: int, label: str | None, source: str | None) -> ModelInfo:
    n = (depth - 2) // 6
    return ModelInfo(
        name=f"resnet{depth}",
        family="resnet",
        description=f"pre-activation ResNet-{depth} (6n+2, n={n}), L2 1e-4",
        params=params,
        macs=macs,
        published_params=None if label is None else parse_label(label),
        published_label=label,
        published_source=source,
        kwargs={"depth": depth},
    )


PRESETS = (
    _preset(20, 274_442, 40_813_184, "0.27M", f"{_PAPER}; {_README} (Residual-Network20)"),
    _preset(32, 470_218, 69_124_736, "0.47M", f"{_README} (Residual-Network32); paper 0.46M"),
    _preset(44, 665_994, 97_436_288, "0.66M", _PAPER),
    # The README row "Residual-Network50 1.7M" is a typo (it is ResNet-110's count); the
    # seed's htd/ ResNet-50 (n=8) has 0.76M and no published count.
    _preset(50, 763_882, 111_592_064, None, None),
    _preset(56, 861_770, 125_747_840, "0.85M", _PAPER),
    _preset(110, 1_742_762, 253_149_824, "1.7M", f"{_PAPER}; {_README} (Residual-Network110)"),
)
