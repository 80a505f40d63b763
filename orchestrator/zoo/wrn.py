"""Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016, arXiv 1605.07146), as in the seed
(5_Wide_Residual_Network/Wide_ResNet_keras.py).

Stem Conv3x3 16; three stages of n = (depth-4)/6 pre-activation blocks with 16k/32k/64k
filters at strides 1/2/2; block = BN-ReLU (o1) -> Conv3x3 -> BN-ReLU -> [Dropout] -> Conv3x3
+ shortcut. The shortcut is a Conv1x1 (block stride) applied to o1 where the block changes
width or resolution (so the first block of every stage), else the identity. Head BN-ReLU-GAP-
Dense (no bias, as in the seed; GAP equals the seed's 8x8 AvgPool on 32x32 inputs and also
works on other sizes). Convs have no bias; he_normal, L2 5e-4, BN 0.9 / 1e-5, no dropout.

seed_variant=True rebuilds the seed's code before commit 30db1f4 (behind its README's
"11.3M" for WRN-16-8): every block gets a projection shortcut and every conv a bias.
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


def wrn(
    inputs: Any,
    *,
    num_classes: int = 10,
    depth: int = 28,
    width: int = 10,
    dropout: float = 0.0,
    weight_decay: float = 5e-4,
    kernel_initializer: Any = "he_normal",
    bn_momentum: float = 0.9,
    bn_epsilon: float = 1e-5,
    seed_variant: bool = False,
) -> Any:
    """WRN-`depth`-`width`: `inputs` -> class probabilities (float32)."""
    ly = layers_for(inputs, weight_decay, kernel_initializer, bn_momentum, bn_epsilon)
    blocks = (depth - 4) // 6
    x = ly.conv(inputs, 16, 3, "stem_conv", use_bias=seed_variant)
    for stage in range(3):
        filters = 16 * width * 2**stage
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            name = f"stage{stage + 1}_block{block + 1}"
            x = _block(ly, x, filters, strides, dropout, seed_variant, name)
    x = ly.bn_relu(x, "head")
    return ly.classifier(ly.global_pool(x), num_classes, use_bias=False)


def _block(
    ly: Any, x: Any, filters: int, strides: int, dropout: float, seed: bool, name: str
) -> Any:
    pre = ly.bn_relu(x, f"{name}_preact")
    y = ly.conv(pre, filters, 3, f"{name}_conv1", strides=strides, use_bias=seed)
    y = ly.dropout(ly.bn_relu(y, f"{name}_mid"), dropout, f"{name}_drop")
    y = ly.conv(y, filters, 3, f"{name}_conv2", use_bias=seed)
    shortcut = x
    if seed or strides != 1 or x.shape[-1] != filters:
        shortcut = ly.conv(pre, filters, 1, f"{name}_shortcut", strides=strides, use_bias=seed)
    return ly.add([shortcut, y], f"{name}_add")


def check(
    model: str, input_shape: tuple[int, ...], num_classes: int, kwargs: Mapping[str, Any]
) -> list[str]:
    problems = check_common(model, kwargs) + check_int(model, "width", kwargs["width"])
    depth = kwargs["depth"]
    if check_int(model, "depth", depth, minimum=10) or (depth - 4) % 6:
        rule = "must be 6n+4 with n >= 1 (10, 16, 22, 28, 40, ...)"
        problems.append(received(model, "depth", rule, depth))
    return problems


FAMILY = Family(
    name="wrn",
    description="Wide ResNet WRN-depth-width (pre-activation, 6n+4)",
    build=wrn,
    check=check,
    arch_keys=frozenset({"depth", "width"}),
)

_PAPER = "Zagoruyko & Komodakis 2016 (arXiv 1605.07146) Table 4"
_README = "BIGBALLON/cifar-10-cnn README"

PRESETS = (
    ModelInfo(
        name="wrn_16_8",
        family="wrn",
        description="WRN-16-8, L2 5e-4, no dropout (seed_variant=True: the README's 11.3M)",
        params=10_968_560,
        macs=1_548_145_664,
        published_params=parse_label("11.0M"),
        published_label="11.0M",
        published_source=f"{_PAPER}; {_README} says 11.3M (seed_variant=True)",
        kwargs={"depth": 16, "width": 8},
    ),
    ModelInfo(
        name="wrn_28_10",
        family="wrn",
        description="WRN-28-10, L2 5e-4, no dropout (seed's 95.78% model)",
        params=36_497_136,
        macs=5_243_328_768,
        published_params=parse_label("36.5M"),
        published_label="36.5M",
        published_source=f"{_PAPER}; {_README} (Wide-resnet 28x10)",
        kwargs={"depth": 28, "width": 10},
    ),
)
