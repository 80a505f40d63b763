"""The Keras backend of the builders' layer interface (zoo/backend.py).

This module imports Keras at the top, so only `backend.layers_for` imports it, for Keras
inputs: the registry and `orch validate` / `orch plan` stay free of TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras

from orchestrator.zoo.backend import Backend, Conv


@dataclass(frozen=True)
class Layers(Backend):
    """Keras layers with the model's weight decay, initializer, BN settings and dropout."""

    def _kernel(self, name: str) -> dict[str, Any]:
        """A kernel layer's initializer, L2 decay and name.

        A fresh initializer per layer: a shared seeded instance would repeat its values.
        """
        init = self.kernel_initializer
        if isinstance(init, str | dict):
            init = keras.initializers.get(init)
        else:
            init = init.__class__.from_config(init.get_config())
        decay = keras.regularizers.L2(self.weight_decay) if self.weight_decay > 0 else None
        return {"kernel_initializer": init, "kernel_regularizer": decay, "name": name}

    def _conv(self, x: Any, conv: Conv, name: str) -> Any:
        return keras.layers.Conv2D(**conv._asdict(), **self._kernel(name))(x)

    def _dense(self, x: Any, units: int, name: str, use_bias: bool, activation: Any) -> Any:
        layer = keras.layers.Dense(
            units, use_bias=use_bias, activation=activation, **self._kernel(name)
        )
        return layer(x)

    def _dropout(self, x: Any, name: str) -> Any:
        return keras.layers.Dropout(self.dropout_rate, name=name)(x)

    def _pool(self, x: Any, pool: int, strides: int, padding: str, name: str, how: str) -> Any:
        kind = keras.layers.MaxPooling2D if how == "max" else keras.layers.AveragePooling2D
        return kind(pool, strides=strides, padding=padding, name=name)(x)

    def bn(self, x: Any, name: str) -> Any:
        return keras.layers.BatchNormalization(
            momentum=self.bn_momentum, epsilon=self.bn_epsilon, name=name
        )(x)

    def relu(self, x: Any, name: str) -> Any:
        return keras.layers.ReLU(name=name)(x)

    def activation(self, x: Any, activation: str, name: str) -> Any:
        return keras.layers.Activation(activation, name=name)(x)

    def softmax(self, x: Any) -> Any:
        return keras.layers.Activation("softmax", dtype="float32", name="softmax")(x)

    def global_pool(self, x: Any, name: str = "avg_pool", *, keepdims: bool = False) -> Any:
        return keras.layers.GlobalAveragePooling2D(keepdims=keepdims, name=name)(x)

    def zero_pad(self, x: Any, pad: int, name: str) -> Any:
        return keras.layers.ZeroPadding2D(pad, name=name)(x)

    def flatten(self, x: Any, name: str = "flatten") -> Any:
        return keras.layers.Flatten(name=name)(x)

    def add(self, xs: Sequence[Any], name: str) -> Any:
        return keras.layers.Add(name=name)(list(xs))

    def multiply(self, xs: Sequence[Any], name: str) -> Any:
        return keras.layers.Multiply(name=name)(list(xs))

    def concat(self, xs: Sequence[Any], name: str) -> Any:
        return keras.layers.Concatenate(name=name)(list(xs))
