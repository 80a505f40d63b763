"""What `orch validate` accepts, the trial builds (issue 12 §1).

Hypothesis writes trials from every recipe, schedule, model, data and precision/XLA option;
for each one the spec accepts, this TensorFlow process builds what the trial process would
(the loop's own `_build` and `_schedule`, the dataset with its sizes) and trains one step
on two images. Nothing may raise: a rule the trial enforces that validate lacks shows up
here as an error.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from orchestrator.errors import SpecError
from orchestrator.spec.load import parse_job
from orchestrator.spec.recipe import OPTIMIZERS, PRECISIONS, WEIGHT_DECAY_MODES
from orchestrator.zoo.base import KERNEL_INITIALIZERS, check_initializer

pytestmark = pytest.mark.integration

# Every spelling the zoo accepts, as a name or as a {class_name, config} table.
INITIALIZERS: list[Any] = [
    name
    for name in [*KERNEL_INITIALIZERS, *(cls for cls, _ in KERNEL_INITIALIZERS.values())]
    if not check_initializer("m", name)
] + [
    {"class_name": "Constant", "config": {"value": 0.05}},
    {"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_out", "seed": 1}},
]
# Small members of every family (a step on two 32x32 images takes well under a second).
MODELS = st.one_of(
    st.just(("lenet5", {})),
    st.builds(
        lambda d, f: ("resnet", {"depth": d, "base_filters": f}),
        st.sampled_from([8, 14]),
        st.integers(2, 6),
    ),
    st.builds(
        lambda k, b, c: (
            "densenet",
            {"depth": 10, "growth_rate": k, "bottleneck": b, "compression": c},
        ),
        st.integers(2, 6),
        st.booleans(),
        st.sampled_from([0.5, 1.0]),
    ),
    st.just(("wrn", {"depth": 10, "width": 1})),
    st.just(("vgg", {"depth": 11, "fc_units": 16})),
    st.just(("resnext", {"depth": 11, "cardinality": 2, "base_width": 2})),
)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


SCHEDULES = st.one_of(
    st.none(),
    st.fixed_dictionaries({"kind": st.just("constant")}, optional={"lr": st.floats(1e-4, 1)}),
    st.fixed_dictionaries(
        {"kind": st.just("step"), "boundaries": st.just([1, 3])},
        optional={
            "values": st.lists(st.floats(1e-4, 1), min_size=3, max_size=3),
            "boundary": st.sampled_from(["lt", "le"]),
            "warmup_epochs": st.integers(0, 3),
        },
    ),
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["cosine", "htd"])},
        optional={"warmup_epochs": st.integers(0, 3), "warmup_start_factor": st.floats(0, 1)},
    ),
    st.fixed_dictionaries(
        {"kind": st.just("plateau")},
        optional={
            "monitor": st.sampled_from(["val_loss", "val_accuracy"]),
            "factor": st.floats(0.05, 0.9),
            "patience": st.integers(0, 3),
        },
    ),
)
RECIPES = st.fixed_dictionaries(
    {"optimizer": st.sampled_from(OPTIMIZERS)},
    optional={
        "lr": st.floats(1e-5, 1.0),
        "momentum": st.floats(0, 0.99),
        "nesterov": st.booleans(),
        "weight_decay": st.sampled_from([0.0, 1e-4, 5e-4, 0.01]),
        "weight_decay_mode": st.sampled_from(WEIGHT_DECAY_MODES),
        "precision": st.sampled_from(PRECISIONS),
        "xla": st.booleans(),
        "augment": st.sampled_from(["none", "standard", "padcrop"]),
        "preprocess": st.sampled_from(["meanstd", "scale", "none"]),
    },
)
DATA = st.fixed_dictionaries(
    {},
    optional={
        "validation_size": st.one_of(st.floats(0, 0.5), st.integers(0, 400)),
        "train_size": st.integers(10, 1438),
        "test_size": st.integers(1, 359),
    },
)


@st.composite
def trial_tables(draw: st.DrawFn) -> dict[str, Any]:
    model, args = draw(MODELS)
    if init := draw(_optional(st.sampled_from(INITIALIZERS))):
        args = {**args, "kernel_initializer": init}
    recipe = draw(RECIPES)
    if (schedule := draw(SCHEDULES)) is not None:
        recipe["schedule"] = schedule
    return {
        "model": model,
        "model_args": args,
        "dataset": "digits",
        "epochs": draw(st.integers(1, 6)),
        "batch_size": 2,
        "seed": draw(st.integers(0, 2**32 - 1)),
        "recipe": recipe,
        "data": draw(DATA),
    }


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(table=trial_tables())
def test_what_validate_accepts_builds_and_trains(table: dict[str, Any]) -> None:
    import keras
    import numpy as np
    import tensorflow as tf

    from orchestrator.data import load_dataset
    from orchestrator.training import loop

    try:
        (trial,) = parse_job({"job": {"name": "p"}, "trial": [table]}, "p.toml").trials
    except SpecError:
        assume(False)  # only what validate accepts is under test
        return
    keras.mixed_precision.set_global_policy(trial.recipe.precision)
    try:
        data = load_dataset(
            trial.data.name,
            validation_size=trial.data.validation_size,
            train_size=trial.data.train_size,
            test_size=trial.data.test_size,
        )
        schedule = loop._schedule(trial)
        lrs = [schedule.lr_at(e) if schedule else trial.recipe.lr for e in range(trial.epochs)]
        assert all(math.isfinite(lr) and lr >= 0 for lr in lrs)
        if hasattr(schedule, "observe"):
            schedule.observe(0, {"val_loss": 1.0, "val_accuracy": 0.5})
        model, optimizer = loop._build(
            trial, tf.distribute.get_strategy(), data.num_classes, data.input_shape
        )
        optimizer.learning_rate.assign(lrs[0])
        x = data.train.x[:2].astype("float32") / 255.0
        logs = model.train_on_batch(x, data.train.y[:2], return_dict=True)
        assert np.isfinite(logs["loss"]) or trial.recipe.lr > 0.1  # big LRs may diverge
    finally:
        keras.mixed_precision.set_global_policy("float32")
        keras.backend.clear_session()


@pytest.mark.parametrize("init", INITIALIZERS, ids=str)
def test_every_accepted_initializer_fills_a_kernel(init: Any) -> None:
    """The zoo's list of initializer names is a copy of Keras's: each must build."""
    import keras

    assert check_initializer("m", init) == []
    kernel = keras.initializers.get(init)((3, 3, 4, 8))
    assert tuple(kernel.shape) == (3, 3, 4, 8)
