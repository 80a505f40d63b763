"""model_args.weights = "imagenet": keras.applications' weight files load into the zoo's
DenseNets, which then compute exactly what keras.applications' models compute. The files
are written here (random weights, BN statistics included, in keras.applications' .h5
format) and pinned by their md5, as the published ones are; offline, a missing file is
one clear error."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from orchestrator.errors import DatasetError, SpecError
from orchestrator.zoo import create_model, pretrained

pytestmark = pytest.mark.integration
SHAPE = (64, 64, 3)  # small inputs: the weights do not depend on the image size


@pytest.fixture(autouse=True)
def keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv(pretrained.ENV_WEIGHTS_DIR, raising=False)
    return tmp_path / "keras" / "models"


def _published_file(model: keras.Model, top: bool, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Random weights (moving statistics too) saved as keras.applications ships them."""
    from keras.src.legacy.saving import legacy_h5_format

    rng = np.random.default_rng(0)
    for w in model.weights:
        value = rng.normal(0.0, 0.05, w.shape)
        if "moving_variance" in w.path:
            value = rng.uniform(0.5, 1.5, w.shape)
        w.assign(value.astype("float32"))
    filename, _ = pretrained.FILES[(121, top)]
    path = pretrained.cache_dir() / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setitem(pretrained.MD5, (121, top), md5)
    return path


def test_imagenet_weights_give_keras_applications_outputs(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    reference = keras.applications.DenseNet121(weights=None, input_shape=SHAPE)
    _published_file(reference, True, monkeypatch)
    ours = create_model("densenet121", input_shape=SHAPE, weights="imagenet")
    x = np.random.default_rng(1).uniform(-1, 1, (2, *SHAPE)).astype("float32")
    want, got = reference(x, training=False), ours(x, training=False)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-6)


def test_other_class_counts_get_every_layer_but_the_classifier(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    reference = keras.applications.DenseNet121(weights=None, include_top=False, input_shape=SHAPE)
    _published_file(reference, False, monkeypatch)
    ours = create_model("densenet121", num_classes=10, input_shape=SHAPE, weights="imagenet")
    features = keras.Model(ours.input, ours.get_layer("head_relu").output)
    x = np.random.default_rng(2).uniform(-1, 1, (2, *SHAPE)).astype("float32")
    want = np.asarray(reference(x, training=False))
    np.testing.assert_allclose(np.asarray(features(x, training=False)), want, rtol=1e-4, atol=1e-5)
    assert ours.output.shape[-1] == 10


def test_a_file_that_is_not_the_published_one_is_refused(keras_home: Path) -> None:
    filename, _ = pretrained.FILES[(121, True)]
    keras_home.mkdir(parents=True)
    (keras_home / filename).write_bytes(b"not weights")
    with pytest.raises(DatasetError, match="is not the published 9d60b8095a5708f2dcce2bca79d332c7"):
        create_model("densenet121", input_shape=SHAPE, weights="imagenet")


def test_offline_names_the_file_and_where_to_put_it(keras_home: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ORCH_OFFLINE", "1")
    with pytest.raises(DatasetError) as err:
        create_model("densenet169", num_classes=10, input_shape=SHAPE, weights="imagenet")
    msg = str(err.value)
    assert "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg
    assert str(keras_home) in msg and "orch is offline" in msg


def test_weights_only_where_they_fit() -> None:
    with pytest.raises(SpecError, match="weights: exist only for densenet121"):
        create_model("densenet_bc_100_12", weights="imagenet")
    with pytest.raises(SpecError, match="weights: must be None or 'imagenet'"):
        create_model("densenet121", weights="cifar10")
    with pytest.raises(SpecError, match="3-channel"):
        create_model("densenet121", input_shape=(64, 64, 1), weights="imagenet")
