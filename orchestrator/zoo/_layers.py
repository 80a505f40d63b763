"""The Keras backend of the family builders' layer interface.

Builders get their layers from `zoo.base.layers_for(inputs, ...)`: this class for Keras
tensors, `zoo.counting.CountingLayers` (same methods, on shapes) for counting. This module
imports Keras at the top, so only `layers_for` imports it, for Keras inputs: the registry
and `orch validate` / `orch plan` stay free of TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras


@dataclass(frozen=True)
class Layers:
    """Conv / BN / Dense factories with one family's weight decay, initializer and BN settings.

    Weight decay is `keras.regularizers.L2(weight_decay)` on conv and dense kernels only (not
    biases or BN), as in the seeds: Keras L2 adds wd * sum(w^2), i.e. PyTorch's 2 * wd.
    """

    weight_decay: float
    kernel_initializer: Any
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3

    def regularizer(self) -> keras.regularizers.Regularizer | None:
        return keras.regularizers.L2(self.weight_decay) if self.weight_decay > 0 else None

    def initializer(self) -> Any:
        """A fresh initializer per layer (a shared seeded instance would repeat its values)."""
        init = self.kernel_initializer
        if isinstance(init, str | dict):
            return keras.initializers.get(init)
        return init.__class__.from_config(init.get_config())

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
        return keras.layers.Conv2D(
            filters,
            kernel,
            strides=strides,
            padding=padding,
            groups=groups,
            use_bias=use_bias,
            activation=activation,
            kernel_initializer=self.initializer(),
            kernel_regularizer=self.regularizer(),
            name=name,
        )(x)

    def bn(self, x: Any, name: str) -> Any:
        return keras.layers.BatchNormalization(
            momentum=self.bn_momentum, epsilon=self.bn_epsilon, name=name
        )(x)

    def bn_relu(self, x: Any, name: str) -> Any:
        """BN then ReLU, named `{name}_bn` and `{name}_relu`."""
        return self.relu(self.bn(x, f"{name}_bn"), f"{name}_relu")

    def dense(
        self,
        x: Any,
        units: int,
        name: str,
        *,
        use_bias: bool = True,
        activation: str | None = None,
    ) -> Any:
        return keras.layers.Dense(
            units,
            use_bias=use_bias,
            activation=activation,
            kernel_initializer=self.initializer(),
            kernel_regularizer=self.regularizer(),
            name=name,
        )(x)

    def classifier(self, x: Any, num_classes: int, *, use_bias: bool = True) -> Any:
        """Dense logits 'predictions' then a float32 softmax (safe under mixed precision)."""
        return self.softmax(self.dense(x, num_classes, "predictions", use_bias=use_bias))

    # The rest of the interface the counting backend mirrors (zoo/counting.py).
    def relu(self, x: Any, name: str) -> Any:
        return keras.layers.ReLU(name=name)(x)

    def activation(self, x: Any, activation: str, name: str) -> Any:
        return keras.layers.Activation(activation, name=name)(x)

    def softmax(self, x: Any) -> Any:
        """The output layer: softmax computed and returned in float32 whatever the policy."""
        return keras.layers.Activation("softmax", dtype="float32", name="softmax")(x)

    def dropout(self, x: Any, rate: float, name: str) -> Any:
        """Dropout only when the rate is non-zero, so rate 0 adds no layer."""
        return keras.layers.Dropout(rate, name=name)(x) if rate > 0 else x

    def global_pool(self, x: Any, name: str = "avg_pool", *, keepdims: bool = False) -> Any:
        return keras.layers.GlobalAveragePooling2D(keepdims=keepdims, name=name)(x)

    def max_pool(
        self, x: Any, pool: int, name: str, *, strides: int | None = None, padding: str = "valid"
    ) -> Any:
        return keras.layers.MaxPooling2D(pool, strides=strides, padding=padding, name=name)(x)

    def avg_pool(
        self, x: Any, pool: int, name: str, *, strides: int | None = None, padding: str = "valid"
    ) -> Any:
        return keras.layers.AveragePooling2D(pool, strides=strides, padding=padding, name=name)(x)

    def zero_pad(self, x: Any, pad: int, name: str) -> Any:
        """`pad` zero pixels on every side (keras.applications' explicit stem padding)."""
        return keras.layers.ZeroPadding2D(pad, name=name)(x)

    def flatten(self, x: Any, name: str = "flatten") -> Any:
        return keras.layers.Flatten(name=name)(x)

    def add(self, xs: Sequence[Any], name: str) -> Any:
        return keras.layers.Add(name=name)(list(xs))

    def multiply(self, xs: Sequence[Any], name: str) -> Any:
        return keras.layers.Multiply(name=name)(list(xs))

    def concat(self, xs: Sequence[Any], name: str) -> Any:
        return keras.layers.Concatenate(name=name)(list(xs))
