"""Datasets (cifar10/100, svhn, digits, synthetic) and their tf.data input pipelines.

Importing this package does not import TensorFlow: the dataset table, the loaders and the
preprocessing/augmentation names are pure numpy, so spec validation and `orch validate`
stay light. The pipeline functions are resolved on first use (module `__getattr__`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.data.base import ChannelStats, Dataset, Split, compute_stats
from orchestrator.data.normalization import PREPROCESSING
from orchestrator.data.registry import AUGMENTATIONS, DATASETS, list_datasets, load_dataset

if TYPE_CHECKING:
    from orchestrator.data.pipeline import make_eval_pipeline, make_train_pipeline

_LAZY = {"make_train_pipeline", "make_eval_pipeline", "epoch_order", "steps_per_epoch"}

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "PREPROCESSING",
    "ChannelStats",
    "Dataset",
    "Split",
    "compute_stats",
    "epoch_order",
    "list_datasets",
    "load_dataset",
    "make_eval_pipeline",
    "make_train_pipeline",
    "steps_per_epoch",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from orchestrator.data import pipeline  # imports TensorFlow

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
