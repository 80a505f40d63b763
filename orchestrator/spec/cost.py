"""What a trial costs, estimated without TensorFlow: for `orch plan` and longest-first order.

    cost = MACs per image x training images x epochs x 3

in multiply-accumulates (MAC; 1 MAC = 2 FLOP). The factor 3 counts the forward pass once
and the backward pass twice (gradients for activations and for weights). MACs per image
are the zoo preset's stored count (Conv2D incl. groups, Dense; at 32x32 and the preset's
class count). A family request (`model = "densenet"` + model_args) is matched to the
preset with the same architecture; arguments that change the network slightly
(seed_variant, another class count) keep the preset's counts but mark them approximate.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.spec.model import DataSpec, TrialSpec

# Training images per dataset (the full training split); svhn is the 73,257 "train" file.
TRAIN_IMAGES: dict[str, int] = {
    "cifar10": 50_000,
    "cifar100": 50_000,
    "svhn": 73_257,
    "digits": 1_437,
    "synthetic": 5_000,  # generated: train_size images when set
    "synthetic100": 5_000,
}
# Arguments that change neither parameter nor MAC counts.
_COUNT_NEUTRAL = frozenset(
    {"weight_decay", "kernel_initializer", "bn_momentum", "bn_epsilon", "dropout"}
)


@dataclass(frozen=True)
class ModelCounts:
    params: int
    macs: int  # per image, forward
    exact: bool  # False: taken from the closest preset (seed_variant, other class count)
    preset: str


def model_counts(trial: TrialSpec) -> ModelCounts | None:
    """Parameters and MACs of the trial's model from the zoo's presets, or None."""
    from orchestrator.data import DATASETS
    from orchestrator.errors import OrchestratorError
    from orchestrator.zoo import registry

    info = DATASETS.get(trial.data.name)
    classes = info.num_classes if info else None
    try:
        want = registry.resolve_model(trial.model, num_classes=classes, **trial.model_kwargs)
    except (OrchestratorError, TypeError):
        return None
    family = registry.FAMILIES[want.family]
    arch = family.arch_keys
    for preset in registry.PRESETS.values():
        if preset.family != want.family or preset.default_input_shape != want.input_shape:
            continue
        have = registry.resolve_model(preset.name)
        if all(have.kwargs.get(k) == want.kwargs.get(k) for k in arch):
            extra = {k for k in want.kwargs if k not in arch and k not in _COUNT_NEUTRAL}
            same = all(want.kwargs.get(k) == have.kwargs.get(k) for k in extra)
            exact = same and want.num_classes == preset.default_num_classes
            return ModelCounts(preset.params, preset.macs, exact, preset.name)
    return None


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
