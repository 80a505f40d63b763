"""Counting a built model's multiply-accumulates by walking its layers (imports Keras).

The presets store MACs as constants so planning needs no TensorFlow; the integration tests
compare those constants with this walk. Counted per image: Conv2D (groups included),
DepthwiseConv2D and Dense multiplies; BN, pooling, adds and activations are ignored (they
are O(activations), not O(weights x activations)).
"""

from __future__ import annotations

import math
from typing import Any


def layer_macs(layer: Any) -> int:
    """Multiply-accumulates of one layer for one image (0 for layers that hold no kernel)."""
    import keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        out = layer.output.shape  # (N, H, W, C_in * multiplier)
        kh, kw = layer.kernel_size
        return out[1] * out[2] * out[3] * kh * kw
    if isinstance(layer, keras.layers.Conv2D) and not isinstance(
        layer, keras.layers.SeparableConv2D | keras.layers.Conv2DTranspose
    ):
        out = layer.output.shape
        in_channels = layer.input.shape[-1]
        kh, kw = layer.kernel_size
        return out[1] * out[2] * out[3] * kh * kw * (in_channels // layer.groups)
    if isinstance(layer, keras.layers.Dense):
        in_shape = layer.input.shape
        positions = math.prod(d for d in in_shape[1:-1])  # 1 for a plain (N, features) input
        return positions * in_shape[-1] * layer.units
    if isinstance(layer, keras.Model):
        return count_macs(layer)
    return 0


def count_macs(model: Any) -> int:
    """Multiply-accumulates per image of a built functional model."""
    return sum(layer_macs(layer) for layer in model.layers)


def count_params(model: Any) -> int:
    """`model.count_params()`: every weight, BN moving statistics included."""
    return int(model.count_params())
