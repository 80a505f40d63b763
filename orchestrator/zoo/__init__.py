"""The model zoo: every seed architecture in Keras 3, behind one registry.

`create_model(name, num_classes=..., input_shape=..., **overrides)` builds a preset
("resnet20", "densenet_bc_100_12", ...) or a family ("densenet", depth=..., ...).
`list_models`, `get_preset`, `check_model` and `resolve_model` import no TensorFlow.
"""

from orchestrator.zoo.base import ModelInfo
from orchestrator.zoo.registry import (
    ModelConfig,
    build_model,
    check_model,
    create_model,
    family_arguments,
    get_preset,
    list_families,
    list_models,
    resolve_model,
)

__all__ = [
    "ModelConfig",
    "ModelInfo",
    "build_model",
    "check_model",
    "create_model",
    "family_arguments",
    "get_preset",
    "list_families",
    "list_models",
    "resolve_model",
]
