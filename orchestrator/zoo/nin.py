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
    SpatialOp,
    Tally,
    check_bool,
    check_common,
    check_spatial,
    parse_label,
)

_SPATIAL: tuple[SpatialOp, ...] = (("3x3 stride-2 max pool", 3, 2, "same"),) * 2
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
    import keras

    from orchestrator.zoo._layers import Layers, global_pool, softmax
    from orchestrator.zoo._layers import dropout as drop

    ly = Layers(weight_decay, kernel_initializer, bn_momentum, bn_epsilon)
    x = inputs
    for index, convs in enumerate(_BLOCKS, start=1):
        x = _mlpconv(ly, x, convs, batch_norm, f"block{index}")
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{index}_pool")(x)
        x = drop(x, dropout, f"block{index}_drop")
    x = _mlpconv(ly, x, ((192, 3), (192, 1), (num_classes, 1)), batch_norm, "block3")
    return softmax(global_pool(x))


def _mlpconv(
    ly: Any, x: Any, convs: tuple[tuple[int, int], ...], batch_norm: bool, name: str
) -> Any:
    from orchestrator.zoo._layers import relu

    for index, (filters, kernel) in enumerate(convs, start=1):
        x = ly.conv(x, filters, kernel, f"{name}_conv{index}", use_bias=True)
        if batch_norm:
            x = ly.bn(x, f"{name}_bn{index}")
        x = relu(x, f"{name}_relu{index}")
    return x


def check(
    model: str, input_shape: tuple[int, ...], num_classes: int, kwargs: Mapping[str, Any]
) -> list[str]:
    problems = check_common(model, kwargs) + check_bool(model, "batch_norm", kwargs["batch_norm"])
    return problems + check_spatial(model, input_shape, _SPATIAL)


def cost(
    input_shape: tuple[int, int, int], num_classes: int, kwargs: Mapping[str, Any]
) -> tuple[int, int]:
    """(params, MACs per image) without building the model."""
    t, shape = Tally(), input_shape
    last = ((192, 3), (192, 1), (num_classes, 1))
    for index, convs in enumerate((*_BLOCKS, last)):
        for filters, kernel in convs:
            shape = t.conv(shape, filters, kernel, bias=True)
            shape = t.bn(shape) if kwargs["batch_norm"] else shape
        if index < 2:
            shape = t.pool(shape, 3, 2, "same")
    return t.params, t.macs


FAMILY = Family(
    name="nin",
    description="Network in Network (mlpconv blocks, global average pooling)",
    build=nin,
    check=check,
    cost=cost,
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
