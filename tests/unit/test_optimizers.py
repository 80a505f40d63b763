"""Optimizer factory: validation (pure) and where the weight decay ends up (Keras)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orchestrator.errors import SpecError
from orchestrator.training.optimizers import OPTIMIZER_KINDS, make_optimizer, validate_optimizer


def test_kinds() -> None:
    assert OPTIMIZER_KINDS == ("sgd", "adam", "adamw")


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"kind": "sgdd", "lr": 0.1}, ["optimizer", "'sgdd'", "Did you mean: sgd"]),
        ({"kind": "sgd", "lr": 0}, ["lr: must be > 0", "lr=0"]),
        ({"kind": "sgd", "lr": 0.1, "momentum": 1.0}, ["momentum", "1.0"]),
        ({"kind": "sgd", "lr": 0.1, "nesterov": "yes"}, ["nesterov", "'yes'"]),
        ({"kind": "sgd", "lr": 0.1, "weight_decay": -1e-4}, ["weight_decay", "-0.0001"]),
        ({"kind": "sgd", "lr": 0.1, "weight_decay_mode": "l3"}, ["weight_decay_mode", "'l3'"]),
        ({"kind": "adamw", "lr": 1e-3, "weight_decay": 1e-4}, ["decoupled", "adamw"]),
    ],
)
def test_validation_names_key_and_value(kwargs: dict, fragments: list[str]) -> None:
    kind = kwargs.pop("kind")
    with pytest.raises(SpecError) as err:
        validate_optimizer(kind, **kwargs)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_all_problems_reported_together() -> None:
    with pytest.raises(SpecError) as err:
        validate_optimizer("rmsprop", lr=-1, momentum=2)
    assert len(err.value.problems) == 3


def test_module_imports_no_tensorflow() -> None:
    code = "import sys, orchestrator.training.optimizers; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.integration
def test_l2_mode_puts_decay_on_the_model() -> None:
    import keras

    optimizer, model_l2 = make_optimizer("sgd", lr=0.1, weight_decay=1e-4)
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.weight_decay is None
    assert optimizer.nesterov is True and optimizer.momentum == pytest.approx(0.9)
    assert model_l2 == pytest.approx(1e-4)


@pytest.mark.integration
@pytest.mark.parametrize("kind", OPTIMIZER_KINDS)
def test_decoupled_mode_puts_decay_on_the_optimizer_kernels_only(kind: str) -> None:
    import keras
    import numpy as np

    optimizer, model_l2 = make_optimizer(
        kind, lr=0.5, weight_decay=0.1, weight_decay_mode="decoupled"
    )
    assert model_l2 == 0.0
    assert optimizer.weight_decay == pytest.approx(0.1)
    dense = keras.layers.Dense(2)
    dense.build((None, 2))
    dense.kernel.assign(np.ones((2, 2)))
    dense.bias.assign(np.ones(2))
    # Zero gradients: only the decoupled decay moves a variable (kernel *= 1 - lr * wd).
    optimizer.apply_gradients([(np.zeros((2, 2), "float32"), dense.kernel),
                               (np.zeros(2, "float32"), dense.bias)])  # fmt: skip
    np.testing.assert_allclose(dense.kernel.numpy(), 0.95, rtol=1e-6)
    np.testing.assert_allclose(dense.bias.numpy(), 1.0)


@pytest.mark.integration
def test_adam_without_decay_has_none() -> None:
    optimizer, model_l2 = make_optimizer("adamw", lr=1e-3, weight_decay=0.0)
    assert model_l2 == 0.0
    assert not optimizer.weight_decay
