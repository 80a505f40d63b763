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

from orchestrator.zoo.backend import Backend
from orchestrator.zoo.base import KERAS_BN, Family, received, typed
from orchestrator.zoo.blocks import conv_unit

# Convs per block by depth (configurations A, B, D, E of the paper's Table 1).
LAYOUTS: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
_FILTERS = (64, 128, 256, 512, 512)


def vgg(
    ly: Backend, x: Any, *, depth: int = 19, fc_units: int = 4096, seed_variant: bool = False
) -> Any:
    """VGG-`depth` with BN: `x` -> class probabilities (float32)."""
    for block, (convs, filters) in enumerate(zip(LAYOUTS[depth], _FILTERS, strict=True), 1):
        for conv in range(1, convs + 1):
            x = conv_unit(ly, x, (filters, 3), f"block{block}", conv, bn=True)
        x = ly.max_pool(x, 2, f"block{block}_pool")
    x = ly.flatten(x, "flatten")
    for index in (1, 2):
        x = ly.bn_relu(ly.dense(x, fc_units, f"fc{index}"), f"fc{index}")
        x = ly.dropout(x, f"fc{index}_drop")
    x = ly.dense(x, ly.num_classes, "predictions")
    if seed_variant:
        x = ly.bn(x, "predictions_bn")
    return ly.softmax(x)


def _depth(model: str, kwargs: Mapping[str, Any], input_shape: Any) -> list[str]:
    depth = kwargs["depth"]
    if isinstance(depth, bool) or not isinstance(depth, int) or depth not in LAYOUTS:
        return [received(model, "depth", f"must be one of {sorted(LAYOUTS)}", depth)]
    return []


FAMILY = Family(
    "VGG-11/13/16/19 with BN after every conv and in the 4096-unit head",
    vgg,
    {"weight_decay": 1e-4, "kernel_initializer": "he_normal", **KERAS_BN, "dropout": 0.5},
    (typed(fc_units=int), _depth),
)

PRESETS = (
    FAMILY.preset(
        "vgg19",
        "VGG-19 with BN, 4096-4096 head, dropout 0.5 (from scratch)",
        (39_002_698, 417_046_528),
        ("39M", "BIGBALLON/cifar-10-cnn README (Vgg19-Network)"),
        depth=19,
    ),
)
