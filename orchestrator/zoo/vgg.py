"""VGG (Simonyan & Zisserman 2015, arXiv 1409.1556) with BN, as in the seed (3_Vgg19_Network).

Conv blocks of 3x3 'same' convs, each Conv (bias, he_normal, L2 1e-4) -> BN (Keras defaults
0.99 / 1e-3) -> ReLU, a 2x2 max pool after each of the 5 blocks (so inputs need >= 32 px).
Head: Flatten -> Dense 4096 -> BN -> ReLU -> Dropout 0.5 -> Dense 4096 -> BN -> ReLU ->
Dropout 0.5 -> Dense classes -> softmax.

seed_variant=True adds the seed's BN on the logits (before the softmax); its 39,002,738
parameters are the seed's count, 40 more than the default. The seed also loaded ImageNet
weights into the convs and 'fc2'; no pretrained weights are loaded here (no downloads).
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

# Convs per block by depth (configurations A, B, D, E of the paper's Table 1).
LAYOUTS: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
_FILTERS = (64, 128, 256, 512, 512)


def vgg(
    inputs: Any,
    *,
    num_classes: int = 10,
    depth: int = 19,
    fc_units: int = 4096,
    dropout: float = 0.5,
    weight_decay: float = 1e-4,
    kernel_initializer: Any = "he_normal",
    bn_momentum: float = 0.99,
    bn_epsilon: float = 1e-3,
    seed_variant: bool = False,
) -> Any:
    """VGG-`depth` with BN: `inputs` -> class probabilities (float32)."""
    ly = layers_for(inputs, weight_decay, kernel_initializer, bn_momentum, bn_epsilon)
    x = inputs
    for block, (convs, filters) in enumerate(zip(LAYOUTS[depth], _FILTERS, strict=True), 1):
        for conv in range(1, convs + 1):
            name = f"block{block}_conv{conv}"
            x = ly.conv(x, filters, 3, name, use_bias=True)
            x = ly.relu(ly.bn(x, f"block{block}_bn{conv}"), f"block{block}_relu{conv}")
        x = ly.max_pool(x, 2, f"block{block}_pool")
    x = ly.flatten(x, "flatten")
    for index in (1, 2):
        x = ly.dense(x, fc_units, f"fc{index}")
        x = ly.relu(ly.bn(x, f"fc{index}_bn"), f"fc{index}_relu")
        x = ly.dropout(x, dropout, f"fc{index}_drop")
    x = ly.dense(x, num_classes, "predictions")
    if seed_variant:
        x = ly.bn(x, "predictions_bn")
    return ly.softmax(x)


def check(
    model: str, input_shape: tuple[int, ...], num_classes: int, kwargs: Mapping[str, Any]
) -> list[str]:
    problems = check_common(model, kwargs) + check_int(model, "fc_units", kwargs["fc_units"])
    depth = kwargs["depth"]
    if isinstance(depth, bool) or not isinstance(depth, int) or depth not in LAYOUTS:
        rule = f"must be one of {sorted(LAYOUTS)}"
        problems.append(received(model, "depth", rule, kwargs["depth"]))
    return problems


FAMILY = Family(
    name="vgg",
    description="VGG-11/13/16/19 with BN after every conv and in the 4096-unit head",
    build=vgg,
    check=check,
    arch_keys=frozenset({"depth", "fc_units"}),
)

PRESETS = (
    ModelInfo(
        name="vgg19",
        family="vgg",
        description="VGG-19 with BN, 4096-4096 head, dropout 0.5 (from scratch)",
        params=39_002_698,
        macs=417_046_528,
        published_params=parse_label("39M"),
        published_label="39M",
        published_source="BIGBALLON/cifar-10-cnn README (Vgg19-Network)",
        kwargs={"depth": 19},
    ),
)
