"""The counting backend: a family's own builder, run on shapes instead of tensors (pure).

Each family describes its architecture once, in its builder. Run on Keras tensors the
builder makes the model; run on a `Sym` (a shape with no batch axis) it calls the same
layer methods on `CountingLayers`, which compute output shapes and record one `LayerCost`
per layer: parameters like `model.count_params()` (BN moving statistics included), MACs
per image (Conv2D incl. groups, Dense), and the activation elements each layer reads and
writes. Params, MACs, the spatial check (is the input large enough?), the cost model's
per-layer FLOPs and bytes and the memory estimate all come from that one walk.

`count_macs(model)` counts a built Keras model the same way; tests compare the two.
Nothing here imports Keras at module level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.zoo.backend import Backend, Conv


class TooSmall(ValueError):
    """A layer got an input smaller than it needs (e.g. a 5x5 'valid' conv on 4 px)."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.label = label


@dataclass(frozen=True)
class LayerCost:
    """One layer, per image. Elements, not bytes: the precision decides the width.

    reads/writes: activation elements read and written by the forward pass (a BN reads
    its input, a concatenation reads every input and writes the result). weights: weight
    elements (kernels, biases, BN gamma/beta and statistics), read once per step.
    """

    name: str
    kind: str  # conv, dense, bn, relu, act, pool, gap, add, concat, mul, dropout, flatten
    params: int
    macs: int
    reads: int
    writes: int
    trainable: int = 0  # parameters that get gradients and optimizer slots

    @property
    def kernel(self) -> bool:
        """A matrix-multiply layer (conv, dense): compute-heavy, two backward kernels."""
        return self.kind in ("conv", "dense")


@dataclass
class Walk:
    """What a builder run on the counting backend recorded, in layer order."""

    layers: list[LayerCost] = field(default_factory=list)
    reducing: list[str] = field(default_factory=list)  # labels of size-reducing layers

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


@dataclass(frozen=True)
class Sym:
    """A symbolic activation: its shape without the batch axis, and the walk it belongs to."""

    dims: tuple[int, ...]
    walk: Walk = field(compare=False, repr=False)

    @property
    def shape(self) -> tuple[int | None, ...]:
        """Like a Keras tensor's shape: (None, H, W, C), so builders can read `x.shape[-1]`."""
        return (None, *self.dims)

    @property
    def size(self) -> int:
        return math.prod(self.dims)


def _out(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    return (size - kernel) // stride + 1 if size >= kernel else 0


@dataclass(frozen=True)
class CountingLayers(Backend):
    """The layer interface (zoo/backend.py) on shapes. Settings that change no count
    (initializer, decay, BN momentum) are accepted and ignored."""

    # -- recording ----------------------------------------------------------------------
    @staticmethod
    def _emit(x: Sym, dims: tuple[int, ...], cost: LayerCost) -> Sym:
        x.walk.layers.append(cost)
        return Sym(dims, x.walk)

    def _spatial(self, x: Sym, kernel: int, stride: int, padding: str, label: str) -> tuple:
        height, width, channels = x.dims
        out_h, out_w = _out(height, kernel, stride, padding), _out(width, kernel, stride, padding)
        if (padding == "valid" and kernel > 1) or stride > 1:
            x.walk.reducing.append(label)
        if out_h < 1 or out_w < 1:
            raise TooSmall(label)
        return out_h, out_w, channels

    def _elementwise(self, x: Sym, name: str, kind: str, params: int = 0) -> Sym:
        trainable = params // 2  # BN: gamma and beta train, the moving statistics do not
        return self._emit(x, x.dims, LayerCost(name, kind, params, 0, x.size, x.size, trainable))

    # -- the primitives of Backend ------------------------------------------------------
    def _conv(self, x: Sym, conv: Conv, name: str) -> Sym:
        kernel, strides = conv.kernel_size, conv.strides
        how = f"stride-{strides}" if strides > 1 else conv.padding
        label = f"{kernel}x{kernel} {how} conv"
        out_h, out_w, channels = self._spatial(x, kernel, strides, conv.padding, label)
        weights = kernel * kernel * (channels // conv.groups) * conv.filters
        params = weights + (conv.filters if conv.use_bias else 0)
        out = out_h * out_w * conv.filters
        cost = LayerCost(name, "conv", params, out_h * out_w * weights, x.size, out, params)
        y = self._emit(x, (out_h, out_w, conv.filters), cost)
        return self._activated(y, conv.activation, name)

    def _dense(self, x: Sym, units: int, name: str, use_bias: bool, activation: Any) -> Sym:
        features, positions = x.dims[-1], math.prod(x.dims[:-1])
        params = features * units + (units if use_bias else 0)
        out = positions * units
        cost = LayerCost(name, "dense", params, positions * features * units, x.size, out, params)
        return self._activated(self._emit(x, (*x.dims[:-1], units), cost), activation, name)

    def _activated(self, y: Sym, activation: str | None, name: str) -> Sym:
        """Keras applies a conv's or dense's own activation in the layer: count it apart."""
        return self.activation(y, activation, f"{name}_{activation}") if activation else y

    def _dropout(self, x: Sym, name: str) -> Sym:
        return self._elementwise(x, name, "dropout")

    def _pool(self, x: Sym, pool: int, strides: int, padding: str, name: str, how: str) -> Sym:
        stride = f"stride-{strides} " if strides != pool else ""
        label = f"{pool}x{pool} {stride}{how} pool"
        dims = self._spatial(x, pool, strides, padding, label)
        return self._emit(x, dims, LayerCost(name, "pool", 0, 0, x.size, math.prod(dims)))

    def bn(self, x: Sym, name: str) -> Sym:
        return self._elementwise(x, name, "bn", 4 * x.dims[-1])

    def relu(self, x: Sym, name: str) -> Sym:
        return self._elementwise(x, name, "relu")

    def activation(self, x: Sym, activation: str, name: str) -> Sym:
        return self._elementwise(x, name, "act")

    def softmax(self, x: Sym) -> Sym:
        return self._elementwise(x, "softmax", "act")

    def global_pool(self, x: Sym, name: str = "avg_pool", *, keepdims: bool = False) -> Sym:
        channels = x.dims[-1]
        dims = (1, 1, channels) if keepdims else (channels,)
        return self._emit(x, dims, LayerCost(name, "gap", 0, 0, x.size, channels))

    def zero_pad(self, x: Sym, pad: int, name: str) -> Sym:
        height, width, channels = x.dims
        dims = (height + 2 * pad, width + 2 * pad, channels)
        return self._emit(x, dims, LayerCost(name, "pad", 0, 0, x.size, math.prod(dims)))

    def flatten(self, x: Sym, name: str = "flatten") -> Sym:
        # A reshape: no data moves.
        return self._emit(x, (x.size,), LayerCost(name, "flatten", 0, 0, 0, 0))

    def add(self, xs: Sequence[Sym], name: str) -> Sym:
        return self._merge(xs, xs[0].dims, name, "add")

    def multiply(self, xs: Sequence[Sym], name: str) -> Sym:
        return self._merge(xs, max((x.dims for x in xs), key=math.prod), name, "mul")

    def concat(self, xs: Sequence[Sym], name: str) -> Sym:
        dims = (*xs[0].dims[:-1], sum(x.dims[-1] for x in xs))
        return self._merge(xs, dims, name, "concat")

    @staticmethod
    def _merge(xs: Sequence[Sym], dims: tuple[int, ...], name: str, kind: str) -> Sym:
        cost = LayerCost(name, kind, 0, 0, sum(x.size for x in xs), math.prod(dims))
        return CountingLayers._emit(xs[0], dims, cost)


def walk(build: Any, input_shape: tuple[int, int, int], num_classes: int, **kwargs: Any) -> Walk:
    """Runs a family builder on the counting backend. Raises TooSmall for tiny inputs."""
    recorded = Walk()
    build(Sym(tuple(input_shape), recorded), num_classes=num_classes, **kwargs)
    return recorded


# ------------------------------------------------------------------- built Keras models


def layer_macs(layer: Any) -> int:
    """Multiply-accumulates of one built Keras layer for one image (0 without a kernel)."""
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
