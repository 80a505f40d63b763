"""Content keys: a trial's identity is a hash of everything that changes its result."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from orchestrator.spec.model import TrialSpec

# Bump when the meaning of a field changes, so old results are not mistaken for new ones.
KEY_VERSION = 1


def key_material(trial: TrialSpec) -> dict[str, Any]:
    """The result-defining part of a trial: model, data, recipe, epochs, seed.

    Not the name (a label), the resources, the reference or the data location.
    """
    data = dataclasses.asdict(trial.data)
    data.pop("data_dir")
    return {
        "v": KEY_VERSION,
        "model": trial.model,
        "model_args": trial.model_args,
        "data": data,
        "epochs": trial.epochs,
        "batch_size": trial.batch_size,
        "seed": trial.seed,
        "recipe": dataclasses.asdict(trial.recipe),
    }


def trial_key(trial: TrialSpec) -> str:
    blob = json.dumps(key_material(trial), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
