"""What a trial costs, estimated without TensorFlow: for `orch plan` and longest-first order.

    cost = MACs per image x training images x epochs x 3

in multiply-accumulates (MAC; 1 MAC = 2 FLOP). The factor 3 counts the forward pass once
and the backward pass twice (gradients for activations and for weights). MACs per image
(Conv2D incl. groups, Dense) and parameters come from the zoo's `estimate_cost`, a pure
walk over the shapes of exactly what `create_model` builds for the trial: its model
arguments (seed_variant included) and its dataset's classes and image size.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.spec.model import DataSpec, TrialSpec

# Training images per dataset (the full training split); svhn is the 73,257 "train" file.
TRAIN_IMAGES: dict[str, int] = {
    "cifar10": 50_000,
    "cifar100": 50_000,
    "svhn": 73_257,
    "svhn_extra": 604_388,  # train + extra (the DenseNet paper's SVHN)
    "digits": 1_437,
    "synthetic": 5_000,  # generated: train_size images when set
    "synthetic100": 5_000,
}


@dataclass(frozen=True)
class ModelCounts:
    params: int  # model.count_params() of what the trial builds (its dataset's classes)
    macs: int  # per image, forward
    exact: bool = True  # kept for callers; the zoo's shape walk is exact
    preset: str = ""  # the model name the counts are for


def model_counts(trial: TrialSpec) -> ModelCounts | None:
    """Parameters and MACs per image of the trial's model, from the zoo's pure shape walk
    (presets, seed variants and family requests alike); None if the zoo cannot size it."""
    from orchestrator.data import DATASETS
    from orchestrator.errors import OrchestratorError
    from orchestrator.zoo import estimate_cost as zoo_cost

    info = DATASETS.get(trial.data.name)
    shape = {"num_classes": info.num_classes, "input_shape": info.input_shape} if info else {}
    try:
        cost = zoo_cost(trial.model, **shape, **trial.model_kwargs)
    except (OrchestratorError, TypeError, ValueError):
        return None
    return ModelCounts(int(cost.params), int(cost.macs), True, trial.model)


def training_images(data: DataSpec) -> int | None:
    """Images per epoch: the training split (or train_size) less the validation hold-out."""
    total = TRAIN_IMAGES.get(data.name)
    if data.train_size is not None:
        total = data.train_size if total is None else min(data.train_size, total)
    if total is None:
        return None
    held = data.validation_size or 0
    if isinstance(held, float) and held < 1:
        held = round(held * total)
    return max(total - int(held), 0)


def training_macs(trial: TrialSpec) -> int | None:
    """Estimated multiply-accumulates to train the trial from scratch, or None if unknown."""
    counts, images = model_counts(trial), training_images(trial.data)
    if counts is None or images is None:
        return None
    return counts.macs * images * trial.epochs * 3


def estimate_cost(trial: TrialSpec) -> float:
    """Training cost in MAC (see the module docstring); 0.0 when the model is unknown to the
    presets, so such trials sort last in longest-first order."""
    macs = training_macs(trial)
    return float(macs) if macs is not None else 0.0
