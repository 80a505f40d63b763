"""Network in Network (Lin et al. 2014, arXiv 1312.4400) as in the seed (2_Network_in_Network).

Three mlpconv blocks: [192@5x5, 160@1x1, 96@1x1] -> MaxPool 3x3 s2 'same' -> Dropout 0.5;
[192@5x5, 192@1x1, 192@1x1] -> MaxPool 3x3 s2 'same' -> Dropout 0.5;
[192@3x3, 192@1x1, classes@1x1] -> global average pooling -> softmax. Every conv has a bias,
L2 1e-4 and a ReLU, the class conv included (as in the paper's Caffe model and the seed).
The seed keeps Keras' default glorot_uniform init. `batch_norm=True` (preset "nin_bn", the
seed's Network_in_Network_bn_keras.py) puts BN (Keras defaults 0.99 / 1e-3) between every
conv and its ReLU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.zoo.base import (
    Family,
    ModelInfo,
    check_bool,
    check_common,
    layers_for,
    parse_label,
)

# (filters, kernel) of the three convs of blocks 1 and 2; block 3 ends in the class conv.
_BLOCKS = (((192, 5), (160, 1), (96, 1)), ((192, 5), (192, 1), (192, 1)))


def nin(
    inputs: Any,
    *,
    num_classes: int = 10,
    batch_norm: bool = False,
    dropout: float = 0.5,
    weight_decay: float = 1e-4,
    kernel_initializer: Any = "glorot_uniform",
    bn_momentum: float = 0.99,
    bn_epsilon: float = 1e-3,
) -> Any:
    """Network in Network: `inputs` -> class probabilities (float32)."""
    ly = layers_for(inputs, weight_decay, kernel_initializer, bn_momentum, bn_epsilon)
    x = inputs
    for index, convs in enumerate(_BLOCKS, start=1):
        x = _mlpconv(ly, x, convs, batch_norm, f"block{index}")
        x = ly.max_pool(x, 3, f"block{index}_pool", strides=2, padding="same")
        x = ly.dropout(x, dropout, f"block{index}_drop")
    x = _mlpconv(ly, x, ((192, 3), (192, 1), (num_classes, 1)), batch_norm, "block3")
    return ly.softmax(ly.global_pool(x))


def _mlpconv(
    ly: Any, x: Any, convs: tuple[tuple[int, int], ...], batch_norm: bool, name: str
) -> Any:
    for index, (filters, kernel) in enumerate(convs, start=1):
        x = ly.conv(x, filters, kernel, f"{name}_conv{index}", use_bias=True)
        if batch_norm:
            x = ly.bn(x, f"{name}_bn{index}")
        x = ly.relu(x, f"{name}_relu{index}")
    return x


def check(
    model: str, input_shape: tuple[int, ...], num_classes: int, kwargs: Mapping[str, Any]
) -> list[str]:
    return check_common(model, kwargs) + check_bool(model, "batch_norm", kwargs["batch_norm"])


FAMILY = Family(
    name="nin",
    description="Network in Network (mlpconv blocks, global average pooling)",
    build=nin,
    check=check,
    arch_keys=frozenset({"batch_norm"}),
)

PRESETS = (
    ModelInfo(
        name="nin",
        family="nin",
        description="Network in Network, dropout 0.5, L2 1e-4 (seed's 91.63% model)",
        params=966_986,
        macs=222_486_528,
        published_params=parse_label("0.97M"),
        published_label="0.97M",
        published_source="BIGBALLON/cifar-10-cnn README (Network-in-Network)",
    ),
    ModelInfo(
        name="nin_bn",
        family="nin",
        description="Network in Network with BN after every conv (seed's _bn variant)",
        params=972_658,
        macs=222_486_528,
        kwargs={"batch_norm": True},
    ),
)
