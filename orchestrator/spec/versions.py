"""Definition versions: what a model family, a dataset loader and the training loop compute.

A content key holds a trial's inputs; these versions stand for the code that turns inputs
into a result. Bump a family's number when its builder changes the network it makes (a
layer, an initialiser, a default), a dataset's when its loader changes the images or
labels it yields (split, subset, decoding), and `LOOP` when the epoch loop changes what it
trains (data order, augmentation, evaluation). Exactly the affected trials then get new
keys and retrain; every other finished trial stays valid. Version 1 adds nothing to the
key material, so the keys of trials that predate the versions stay as they were.
"""

from __future__ import annotations

from collections.abc import Mapping

# Model families (orchestrator/zoo/*.py), by family name. Missing: version 1.
FAMILIES: Mapping[str, int] = {
    "lenet": 1,
    "nin": 1,
    "vgg": 1,
    "resnet": 1,
    "wrn": 1,
    "resnext": 1,
    "se_resnext": 1,
    "densenet": 1,
}
# Dataset loaders (orchestrator/data/registry.py), by dataset name. Missing: version 1.
DATASETS: Mapping[str, int] = {
    "cifar10": 1,
    "cifar100": 1,
    "svhn": 1,
    "svhn_extra": 1,
    "digits": 1,
    "synthetic": 1,
    "synthetic100": 1,
}
# The epoch loop, data pipeline and optimizer construction (orchestrator/training/).
LOOP = 1


def family_version(family: str) -> int:
    return FAMILIES.get(family, 1)


def dataset_version(dataset: str) -> int:
    return DATASETS.get(dataset, 1)
