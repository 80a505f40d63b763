"""LeNet-5 as in the seed (BIGBALLON/cifar-10-cnn 1_Lecun_Network, LeNet_dp_da_wd_keras.py).

LeCun et al. 1998 with the seed's modernisations: ReLU instead of tanh, max pooling,
he_normal init, L2 weight decay on all five kernels, biases on, no BN or dropout:
Conv 6@5x5 valid -> MaxPool 2 -> Conv 16@5x5 valid -> MaxPool 2 -> Flatten ->
Dense 120 -> Dense 84 -> Dense classes -> softmax. 62,006 parameters on 32x32x3.
"""

from __future__ import annotations

from typing import Any

from orchestrator.zoo.backend import Backend
from orchestrator.zoo.base import Family


def lenet(ly: Backend, x: Any) -> Any:
    """LeNet-5 (seed version): `x` (N, H, W, C) -> class probabilities (float32)."""
    x = ly.conv(x, 6, 5, "conv1", padding="valid", use_bias=True, activation="relu")
    x = ly.max_pool(x, 2, "pool1")
    x = ly.conv(x, 16, 5, "conv2", padding="valid", use_bias=True, activation="relu")
    x = ly.max_pool(x, 2, "pool2")
    x = ly.flatten(x, "flatten")
    x = ly.dense(x, 120, "fc1", activation="relu")
    x = ly.dense(x, 84, "fc2", activation="relu")
    return ly.classifier(x)


FAMILY = Family(
    "LeNet-5 with ReLU and max pooling (seed version)",
    lenet,
    {"weight_decay": 1e-4, "kernel_initializer": "he_normal"},
)

PRESETS = (
    FAMILY.preset(
        "lenet5",
        "LeNet-5, ReLU, max pool, L2 1e-4 on all kernels (seed's 76.23% model)",
        (62_006, 651_720),
        ("62k", "BIGBALLON/cifar-10-cnn README (Lecun-Network)"),
    ),
)
