"""Every registered model, built for real with Keras on CPU.

Parametrized over `list_models()`, so a new preset is tested for free: build, count params
(exact vs the preset constant, and vs the published figure), count MACs by walking the
layers (vs the constant), forward pass, one training step, `.keras` round trip. Heavy
presets are built and counted in the default suite; their training step and round trip are
marked slow.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gc
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from orchestrator.errors import SpecError
from orchestrator.zoo import check_model, create_model, estimate_cost, get_preset, list_models
from orchestrator.zoo.base import published_tolerance
from orchestrator.zoo.counting import count_macs

pytestmark = pytest.mark.integration

# Presets trained and round-tripped in the default suite: those the quickstart uses and the
# cheap ones. On 2 CPU cores the others take 5 s (resnet44) to over 2 min (resnext29_16x64d)
# each, so they run with the slow marker; every family is still trained and round-tripped
# below in a small configuration, and every preset is built and counted.
QUICK = frozenset({"lenet5", "nin", "nin_bn", "resnet20", "resnet32", "densenet_bc_100_12"})
# Big models: in the default suite they are built and counted, not run.
HEAVY = frozenset(
    {"vgg19", "wrn_28_10", "resnext29_8x64d", "resnext29_16x64d", "densenet_100_12",
     "densenet_100_24", "densenet_bc_160_24", "densenet_bc_190_40", "densenet_bc_250_24",
     "densenet121", "densenet161", "densenet169", "densenet201"}
)  # fmt: skip
TRAIN_PARAMS = [
    name if name in QUICK else pytest.param(name, marks=pytest.mark.slow) for name in list_models()
]

# Small configurations of every family (fast to build and train) for the cross-cutting tests.
SMALL = {
    "lenet": {},
    "nin": {"batch_norm": True},
    "vgg": {"depth": 11, "fc_units": 32},
    "resnet": {"depth": 8},
    "wrn": {"depth": 10, "width": 1, "dropout": 0.3},
    "resnext": {"depth": 11, "cardinality": 4, "base_width": 4},
    "se_resnext": {"depth": 11, "cardinality": 2, "base_width": 4},
    "densenet": {"depth": 22, "growth_rate": 6, "bottleneck": True, "compression": 0.5},
}


@pytest.fixture(autouse=True)
def _fresh_keras(request: pytest.FixtureRequest):
    yield
    keras.mixed_precision.set_global_policy("float32")
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("name") in HEAVY:
        # Free big models now; for small ones the ~0.4 s per test is not worth it.
        keras.backend.clear_session()
        gc.collect()


def _batch(model: keras.Model, n: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = tuple(model.input_shape[1:])
    x = rng.normal(size=(n, *shape)).astype("float32")
    y = rng.integers(0, model.output_shape[-1], size=n)
    return x, y


def _train_step(model: keras.Model) -> float:
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,  # one step: tracing a graph would cost more than it saves
    )
    x, y = _batch(model)
    return float(model.train_on_batch(x, y))


# ------------------------------------------------------------------ every preset


@pytest.mark.parametrize("name", list_models())
def test_build_and_count(name: str) -> None:
    """Every preset, big ones included: exact params and MACs vs the stored constants."""
    info = get_preset(name)
    model = create_model(name)
    assert model.name == name
    assert model.count_params() == info.params
    assert count_macs(model) == info.macs
    if info.published_params is not None:
        error = abs(info.params - info.published_params) / info.published_params
        assert error <= published_tolerance(info.published_label), (name, error)
    assert model.input_shape == (None, *info.default_input_shape)
    assert model.output_shape == (None, info.default_num_classes)
    assert model.layers[-1].name == "softmax"
    assert model.layers[-1].dtype_policy.name == "float32"
    if name not in HEAVY:
        _check_forward(model)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HEAVY))
def test_forward_pass_heavy(name: str) -> None:
    _check_forward(create_model(name))


def _check_forward(model: keras.Model) -> None:
    x, _ = _batch(model, n=2)
    probs = np.asarray(model(x, training=False))
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", TRAIN_PARAMS)
def test_train_step_and_keras_round_trip(name: str, tmp_path: Path) -> None:
    _train_and_round_trip(create_model(name), tmp_path)


@pytest.mark.parametrize("family", sorted(SMALL))
def test_family_train_step_and_keras_round_trip(family: str, tmp_path: Path) -> None:
    """Every family (grouped conv, SE, dropout, BN...) trains and reloads, in a small size."""
    _train_and_round_trip(create_model(family, **SMALL[family]), tmp_path)


def _train_and_round_trip(model: keras.Model, tmp_path: Path) -> None:
    name = model.name
    before = [w.numpy().copy() for w in model.trainable_weights[:3]]
    loss = _train_step(model)
    assert np.isfinite(loss)
    after = model.trainable_weights[:3]
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, after, strict=True))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x, _ = _batch(model, seed=1)
    np.testing.assert_array_equal(model(x, training=False), loaded(x, training=False))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize(
    ("name", "app"),
    [("densenet121", "DenseNet121"),
     pytest.param("densenet169", "DenseNet169", marks=pytest.mark.slow),
     pytest.param("densenet201", "DenseNet201", marks=pytest.mark.slow)],
)  # fmt: skip
def test_imagenet_densenet_matches_keras_applications(name: str, app: str) -> None:
    reference = getattr(keras.applications, app)(weights=None)
    assert get_preset(name).params == reference.count_params()
    assert get_preset(name).macs == count_macs(reference)


# ------------------------------------------------------------------ seed variants


SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("resnext29_4x64d", 20_365_248),  # README "ResNeXt-4x64d 20M"
        ("wrn_16_8", 11_318_016),  # README "Wide-resnet 16x8 11.3M"
        ("densenet_bc_100_12", 850_606),  # README "DenseNet-100x12 0.85M"
        pytest.param("se_resnext29_4x64d", 20_881_354, marks=SLOW),
        pytest.param("densenet_bc_100_24", 3_300_358, marks=SLOW),
        pytest.param("densenet_bc_160_24", 7_549_738, marks=SLOW),  # README 7.5M
        pytest.param("vgg19", 39_002_738, marks=SLOW),
    ],
)
def test_seed_variant_counts(name: str, expected: int) -> None:
    model = create_model(name, seed_variant=True)
    assert model.count_params() == expected
    assert count_macs(model) == estimate_cost(name, seed_variant=True).macs


@pytest.mark.parametrize("family", sorted(SMALL))
@pytest.mark.parametrize(
    ("shape", "classes", "extra"),
    [((40, 33, 1), 3, {}), ((37, 53, 3), 100, {"seed_variant": True})],
)
def test_estimate_cost_matches_built_model(
    family: str, shape: tuple[int, int, int], classes: int, extra: dict
) -> None:
    """The pure estimate (for `orch plan`) equals the built model at other shapes too."""
    from orchestrator.zoo import family_arguments

    kwargs = {**SMALL[family], **{k: v for k, v in extra.items() if k in family_arguments(family)}}
    if family == "densenet" and extra:
        kwargs["layers_per_block"], kwargs["depth"] = (2, 3, 1), None
    model = create_model(family, input_shape=shape, num_classes=classes, **kwargs)
    cost = estimate_cost(family, input_shape=shape, num_classes=classes, **kwargs)
    assert (model.count_params(), count_macs(model)) == (cost.params, cost.macs)


# ------------------------------------------------------------------ families, shapes, options


def test_small_densenet_bc_from_family() -> None:
    """The quickstart's DenseNet-BC-40 (k=12): 6 bottleneck layers per block."""
    model = create_model("densenet", depth=40, growth_rate=12, bottleneck=True, compression=0.5)
    assert sum(1 for layer in model.layers if layer.name.endswith("_concat")) == 18
    assert model.count_params() == 181_210
    assert np.isfinite(_train_step(model))


@pytest.mark.parametrize("family", sorted(SMALL))
def test_smallest_allowed_input_builds_and_smaller_is_rejected(family: str) -> None:
    """The pure size check (no TF) agrees with what Keras can actually build."""
    kwargs = SMALL[family]
    side = next(s for s in range(1, 65) if not check_model(family, input_shape=(s, s, 1), **kwargs))
    model = create_model(family, input_shape=(side, side + 3, 1), num_classes=7, **kwargs)
    assert model.output_shape == (None, 7)
    x, _ = _batch(model)
    assert np.all(np.isfinite(model(x, training=False)))
    if side > 1:
        with pytest.raises(SpecError, match=f"at least {side}"):
            create_model(family, input_shape=(side + 3, side - 1, 1), **kwargs)


_TINY_IMAGENET_DENSENET = {
    "stem": "imagenet", "layers_per_block": 1, "growth_rate": 4, "bottleneck": True,
    "compression": 0.5,
}  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "side"),
    [
        (_TINY_IMAGENET_DENSENET, 29),  # 7x7 s2 stem, 3x3 s2 pool, 3 transitions
        ({**SMALL["densenet"], "seed_variant": True}, 8),  # three transitions
        (SMALL["vgg"], 32),  # five 2x2 pools
    ],
)
def test_smallest_input_of_deeper_layouts(kwargs: dict, side: int) -> None:
    family = "vgg" if "fc_units" in kwargs else "densenet"
    model = create_model(family, input_shape=(side, side, 3), num_classes=3, **kwargs)
    assert model.output_shape == (None, 3)
    with pytest.raises(SpecError, match=f"at least {side}"):
        create_model(family, input_shape=(side - 1, side, 3), **kwargs)


def test_impossible_input_shape_message() -> None:
    with pytest.raises(SpecError) as err:
        create_model("vgg19", input_shape=(8, 8, 3))
    message = str(err.value)
    assert message.startswith("vgg19: input_shape:")
    assert "at least 32" in message and "Received: input_shape=(8, 8, 3)" in message


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("family", sorted(SMALL))
def test_mixed_precision(policy: str, family: str) -> None:
    keras.mixed_precision.set_global_policy(policy)
    model = create_model(family, **SMALL[family])
    compute = "float16" if policy == "mixed_float16" else "bfloat16"
    assert model.get_layer("softmax").dtype_policy.name == "float32"
    assert any(layer.compute_dtype == compute for layer in model.layers)
    x, _ = _batch(model)
    out = model(x, training=False)
    assert out.dtype == "float32"
    if policy == "mixed_float16":
        assert np.isfinite(_train_step(model))


def test_weight_decay_and_overrides_reach_the_layers() -> None:
    model = create_model("resnet20", weight_decay=3e-4, bn_momentum=0.8, bn_epsilon=2e-5)
    conv = model.get_layer("stem_conv")
    assert conv.kernel_regularizer.get_config()["l2"] == pytest.approx(3e-4)
    assert model.get_layer("predictions").kernel_regularizer is not None
    bn = model.get_layer("head_bn")
    assert (bn.momentum, bn.epsilon) == (0.8, 2e-5)
    assert len(model.losses) == sum(
        1 for layer in model.layers if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)
    )
    bare = create_model("resnet20", weight_decay=0.0, kernel_initializer="glorot_uniform")
    assert bare.losses == []
    assert isinstance(
        bare.get_layer("stem_conv").kernel_initializer, keras.initializers.GlorotUniform
    )


def test_grouped_conv_and_dropout_layers() -> None:
    model = create_model("resnext", **{**SMALL["resnext"], "depth": 20})
    assert model.get_layer("stage1_block1_conv2").groups == 4
    assert "stage1_block2_shortcut" not in {layer.name for layer in model.layers}
    seed = create_model("resnext", **{**SMALL["resnext"], "depth": 20}, seed_variant=True)
    assert "stage1_block2_shortcut" in {layer.name for layer in seed.layers}
    wrn = create_model("wrn", depth=10, width=1, dropout=0.3)
    assert wrn.get_layer("stage1_block1_drop").rate == 0.3


def test_num_classes_changes_head_only() -> None:
    model = create_model("resnet20", num_classes=100)
    assert model.output_shape == (None, 100)
    assert model.count_params() == get_preset("resnet20").params + 64 * 90 + 90


def test_unknown_initializer_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"kernel_initializer|cannot build"):
        create_model("lenet5", kernel_initializer="not_an_initializer")


# ------------------------------------------------------------------ distribution

_MIRRORED = textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    import keras
    from orchestrator.zoo import create_model
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = {"replicas": strategy.num_replicas_in_sync}
    for name, kwargs in json.loads(os.environ["ZOO_MODELS"]).items():
        with strategy.scope():
            model = create_model(name, **kwargs)
            model.compile("sgd", "sparse_categorical_crossentropy")
        x = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32")
        y = np.arange(8) % 10
        history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        result[name] = history.history["loss"][-1]
    print("RESULT " + json.dumps(result))
    """
)


def test_models_train_under_mirrored_strategy_on_two_cpus() -> None:
    # One plain, one grouped-conv + SE, one concatenating model: each fit costs a graph trace.
    models = {"lenet5": {}, "se_resnext": SMALL["se_resnext"], "densenet": SMALL["densenet"]}
    env = {**os.environ, "ZOO_MODELS": json.dumps(models), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", _MIRRORED], capture_output=True, text=True, env=env, timeout=600
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result.pop("replicas") == 2
    assert set(result) == set(models)
    assert all(np.isfinite(loss) for loss in result.values()), result
