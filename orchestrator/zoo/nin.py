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

from collections.abc import Sequence
from typing import Any

from orchestrator.zoo.backend import Backend
from orchestrator.zoo.base import KERAS_BN, Family, typed
from orchestrator.zoo.blocks import conv_unit

# (filters, kernel) of the three convs of blocks 1 and 2; block 3 ends in the class conv.
_BLOCKS = (((192, 5), (160, 1), (96, 1)), ((192, 5), (192, 1), (192, 1)))


def nin(ly: Backend, x: Any, *, batch_norm: bool = False) -> Any:
    """Network in Network: `x` -> class probabilities (float32)."""
    for index, convs in enumerate(_BLOCKS, start=1):
        x = _mlpconv(ly, x, convs, batch_norm, f"block{index}")
        x = ly.max_pool(x, 3, f"block{index}_pool", strides=2, padding="same")
        x = ly.dropout(x, f"block{index}_drop")
    x = _mlpconv(ly, x, ((192, 3), (192, 1), (ly.num_classes, 1)), batch_norm, "block3")
    return ly.softmax(ly.global_pool(x))


def _mlpconv(ly: Backend, x: Any, convs: Sequence[tuple[int, int]], bn: bool, name: str) -> Any:
    for index, conv in enumerate(convs, start=1):
        x = conv_unit(ly, x, conv, name, index, bn=bn)
    return x


_SETTINGS = {"weight_decay": 1e-4, "kernel_initializer": "glorot_uniform", "dropout": 0.5}
FAMILY = Family(
    "Network in Network (mlpconv blocks, global average pooling)",
    nin,
    {**_SETTINGS, **KERAS_BN},
    (typed(batch_norm=bool),),
)

_README = "BIGBALLON/cifar-10-cnn README (Network-in-Network)"
PRESETS = (
    FAMILY.preset(
        "nin",
        "Network in Network, dropout 0.5, L2 1e-4 (seed's 91.63% model)",
        (966_986, 222_486_528),
        ("0.97M", _README),
    ),
    FAMILY.preset(
        "nin_bn",
        "Network in Network with BN after every conv (seed's _bn variant)",
        (972_658, 222_486_528),
        batch_norm=True,
    ),
)
