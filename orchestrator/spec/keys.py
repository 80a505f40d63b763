"""Content keys: a trial's identity is a hash of everything that changes its result.

The key material is the trial's inputs (model and its arguments, data, recipe, epochs,
batch size, seed) plus the definition versions of the code that computes from them
(`spec.versions`). Two rules keep finished trials valid:

- Adding a field with a default to the recipe or the data spec moves no key: a field
  enters the material only when it differs from its default, except the fields that were
  there when keys began (`_FIRST_FIELDS`), which always enter, as they always did.
- A definition version enters only when it is not 1, so the keys computed before versions
  existed are the keys of version 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from orchestrator.spec import versions
from orchestrator.spec.model import TrialSpec

# Bump when the meaning of a field changes, so old results are not mistaken for new ones.
KEY_VERSION = 1

# The fields each part had when content keys began: always in the material.
_FIRST_FIELDS = {
    "data": ("name", "validation_size", "train_size", "test_size"),
    "recipe": (
        "optimizer",
        "lr",
        "momentum",
        "nesterov",
        "weight_decay",
        "weight_decay_mode",
        "schedule",
        "preprocess",
        "augment",
        "precision",
        "xla",
    ),
}
# Where the data lives is not what it is.
_NOT_KEY = {"data": ("data_dir",)}


def _part(name: str, spec: Any) -> dict[str, Any]:
    """A spec part's fields for the material: the first ones always, later ones when set."""
    values = dataclasses.asdict(spec)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        if f.metadata.get("derived") or f.name in _NOT_KEY.get(name, ()):
            continue
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        if f.name in _FIRST_FIELDS[name] or values[f.name] != default:
            out[f.name] = values[f.name]
    return out


def _family(model: str) -> str:
    from orchestrator.zoo.registry import PRESETS

    preset = PRESETS.get(model)
    return preset.family if preset is not None else model


def key_material(trial: TrialSpec) -> dict[str, Any]:
    """The result-defining part of a trial: model, data, recipe, epochs, seed, versions.

    Not the name (a label), the resources, the reference or the data location.
    """
    material: dict[str, Any] = {
        "v": KEY_VERSION,
        "model": trial.model,
        "model_args": trial.model_args,
        "data": _part("data", trial.data),
        "epochs": trial.epochs,
        "batch_size": trial.batch_size,
        "seed": trial.seed,
        "recipe": _part("recipe", trial.recipe),
    }
    defined = {
        "model_version": versions.family_version(_family(trial.model)),
        "data_version": versions.dataset_version(trial.data.name),
        "loop_version": versions.LOOP,
    }
    material.update({k: v for k, v in defined.items() if v != 1})
    return material


def trial_key(trial: TrialSpec) -> str:
    blob = json.dumps(key_material(trial), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
