"""The model zoo: every seed architecture in Keras 3, behind one registry.

`create_model(name, num_classes=..., input_shape=..., **overrides)` builds a preset
("resnet20", "densenet_bc_100_12", ...) or a family ("densenet", depth=..., ...).
`list_models`, `get_preset`, `check_model`, `resolve_model`, `estimate_cost` (exact
params and MACs of any request) and `architecture` (its layers with their costs) import no
TensorFlow: they run the same builders on a counting backend (zoo/counting.py).
"""

from orchestrator.zoo.base import ModelInfo
from orchestrator.zoo.registry import (
    Cost,
    ModelConfig,
    architecture,
    build_model,
    check_model,
    create_model,
    estimate_cost,
    family_arguments,
    get_preset,
    list_families,
    list_models,
    resolve_model,
)

__all__ = [
    "Cost",
    "ModelConfig",
    "ModelInfo",
    "architecture",
    "build_model",
    "check_model",
    "create_model",
    "estimate_cost",
    "family_arguments",
    "get_preset",
    "list_families",
    "list_models",
    "resolve_model",
]
