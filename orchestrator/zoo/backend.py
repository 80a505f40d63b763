"""The layer interface the family builders call, written once for both backends (pure).

A builder gets a `Backend` and an input and calls its methods: `_layers.Layers` makes Keras
layers of them, `counting.CountingLayers` computes shapes and records each layer's cost.
This class holds what one model's layers share (class count, weight decay, initializer,
BN settings, dropout rate), the public method signatures and the composite layers
(BN-ReLU, the classifier, a dropout that a zero rate leaves out); a backend supplies only
the primitives. Nothing here imports Keras: `layers_for` imports the Keras backend only
for Keras inputs, so the registry, `orch validate` and `orch plan` stay free of TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple


class Conv(NamedTuple):
    """A Conv2D's arguments, named as Keras names them."""

    filters: int
    kernel_size: int
    strides: int
    padding: str
    use_bias: bool
    groups: int
    activation: str | None


@dataclass(frozen=True)
class Backend:
    """Layer factories with one model's settings; subclasses implement the `_` primitives.

    Weight decay is L2 on conv and dense kernels only (not biases or BN), as in the seeds:
    Keras L2 adds wd * sum(w^2), i.e. PyTorch's 2 * wd.
    """

    num_classes: int = 10
    weight_decay: float = 0.0
    kernel_initializer: Any = "he_normal"
    bn_momentum: float = 0.99  # Keras' BN defaults; the PyTorch seeds' are TORCH_BN
    bn_epsilon: float = 1e-3
    dropout_rate: float = 0.0

    # -- the interface the builders call ------------------------------------------------
    def conv(
        self,
        x: Any,
        filters: int,
        kernel: int,
        name: str,
        *,
        strides: int = 1,
        padding: str = "same",
        use_bias: bool = False,
        groups: int = 1,
        activation: str | None = None,
    ) -> Any:
        """A 2-D convolution; with `activation`, the activation named `{name}_{activation}`."""
        return self._conv(
            x, Conv(filters, kernel, strides, padding, use_bias, groups, activation), name
        )

    def dense(
        self, x: Any, units: int, name: str, *, use_bias: bool = True, activation: str | None = None
    ) -> Any:
        return self._dense(x, units, name, use_bias, activation)

    def bn_relu(self, x: Any, name: str) -> Any:
        """BN then ReLU, named `{name}_bn` and `{name}_relu`."""
        return self.relu(self.bn(x, f"{name}_bn"), f"{name}_relu")

    def classifier(self, x: Any, *, use_bias: bool = True) -> Any:
        """Dense logits 'predictions' then a float32 softmax (safe under mixed precision)."""
        return self.softmax(self.dense(x, self.num_classes, "predictions", use_bias=use_bias))

    def dropout(self, x: Any, name: str) -> Any:
        """Dropout at the model's rate, only when it is non-zero: rate 0 adds no layer."""
        return self._dropout(x, name) if self.dropout_rate > 0 else x

    def max_pool(
        self, x: Any, pool: int, name: str, *, strides: int | None = None, padding: str = "valid"
    ) -> Any:
        return self._pool(x, pool, strides or pool, padding, name, "max")

    def avg_pool(
        self, x: Any, pool: int, name: str, *, strides: int | None = None, padding: str = "valid"
    ) -> Any:
        return self._pool(x, pool, strides or pool, padding, name, "average")

    # -- primitives, one per layer kind -------------------------------------------------
    def _conv(self, x: Any, conv: Conv, name: str) -> Any:
        raise NotImplementedError

    def _dense(self, x: Any, units: int, name: str, use_bias: bool, activation: Any) -> Any:
        raise NotImplementedError

    def _dropout(self, x: Any, name: str) -> Any:
        raise NotImplementedError

    def _pool(self, x: Any, pool: int, strides: int, padding: str, name: str, how: str) -> Any:
        """`how`: "max" or "average"."""
        raise NotImplementedError

    def bn(self, x: Any, name: str) -> Any:
        raise NotImplementedError

    def relu(self, x: Any, name: str) -> Any:
        raise NotImplementedError

    def activation(self, x: Any, activation: str, name: str) -> Any:
        raise NotImplementedError

    def softmax(self, x: Any) -> Any:
        """The output layer 'softmax', computed and returned in float32 whatever the policy."""
        raise NotImplementedError

    def global_pool(self, x: Any, name: str = "avg_pool", *, keepdims: bool = False) -> Any:
        raise NotImplementedError

    def zero_pad(self, x: Any, pad: int, name: str) -> Any:
        """`pad` zero pixels on every side (keras.applications' explicit stem padding)."""
        raise NotImplementedError

    def flatten(self, x: Any, name: str = "flatten") -> Any:
        raise NotImplementedError

    def add(self, xs: Sequence[Any], name: str) -> Any:
        raise NotImplementedError

    def multiply(self, xs: Sequence[Any], name: str) -> Any:
        raise NotImplementedError

    def concat(self, xs: Sequence[Any], name: str) -> Any:
        raise NotImplementedError


def layers_for(inputs: Any, **settings: Any) -> Backend:
    """The backend for `inputs`: counting on a shape (`counting.Sym`), else Keras.

    One builder per family serves both: the model, and its params, MACs, per-layer bytes
    and input-size check without TensorFlow. `settings`: `Backend`'s fields.
    """
    from orchestrator.zoo.counting import CountingLayers, Sym

    if isinstance(inputs, Sym):
        return CountingLayers(**settings)
    from orchestrator.zoo._layers import Layers

    return Layers(**settings)
