"""tf.data pipelines: normalisation constants, augmentation statistics, and determinism
per (seed, epoch), which exact resume relies on."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from orchestrator.data import Split, compute_stats
from orchestrator.data.normalization import CIFAR10_FULL, CIFAR10_ROUNDED, VGG_MEAN_RGB
from orchestrator.errors import SpecError

pytestmark = pytest.mark.integration

tf = pytest.importorskip("tensorflow")
from orchestrator.data.pipeline import (  # noqa: E402  (after importorskip)
    epoch_order,
    make_eval_pipeline,
    make_train_pipeline,
    steps_per_epoch,
)


def random_split(n: int = 300, seed: int = 0, classes: int = 10) -> Split:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return Split(x, rng.integers(0, classes, n).astype(np.int64))


def constant_split(n: int, value: int) -> Split:
    return Split(np.full((n, 32, 32, 3), value, np.uint8), np.zeros(n, np.int64))


def collect(pipeline) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in pipeline), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def train(split: Split, augment: str = "standard", preprocess: str = "none", **kw):
    args = dict(batch_size=128, epoch=0, seed=0, dataset="synthetic") | kw
    return collect(make_train_pipeline(split, preprocess=preprocess, augment=augment, **args))


# ---------------------------------------------------------------- structure and order


def test_batches_types_and_one_pass_over_the_data() -> None:
    split = random_split(300)
    pipeline = make_train_pipeline(
        split, batch_size=128, epoch=3, seed=7, preprocess="scale", augment="none",
        dataset="synthetic",
    )  # fmt: skip
    batches = list(pipeline)
    assert [len(y) for _, y in batches] == [128, 128, 44]
    assert steps_per_epoch(300, 128) == 3 and steps_per_epoch(300, 128, True) == 2
    x, y = batches[0]
    assert x.dtype == tf.float32 and y.dtype.is_integer and x.shape[1:] == (32, 32, 3)
    images, labels = collect(pipeline)
    order = epoch_order(300, seed=7, epoch=3)
    np.testing.assert_allclose(images, split.x[order] / 255.0, rtol=1e-6)
    assert np.array_equal(labels, split.y[order])


def test_drop_remainder() -> None:
    pipeline = make_train_pipeline(
        random_split(300), batch_size=128, epoch=0, seed=0, preprocess="none",
        augment="standard", dataset="synthetic", drop_remainder=True,
    )  # fmt: skip
    assert [len(y) for _, y in pipeline] == [128, 128]
    assert pipeline.element_spec[0].shape.as_list() == [128, 32, 32, 3]


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("preprocess", "dataset", "mean", "std"),
    [
        ("none", "cifar10", (0, 0, 0), (1, 1, 1)),
        ("scale", "cifar10", (0, 0, 0), (255, 255, 255)),
        ("meanstd", "cifar10", CIFAR10_FULL.mean, CIFAR10_FULL.std),
        ("meanstd_rounded", "cifar10", CIFAR10_ROUNDED.mean, CIFAR10_ROUNDED.std),
        ("meanstd", "cifar100", (129.3, 124.1, 112.4), (68.2, 65.4, 70.4)),
        ("vgg_mean", "cifar10", VGG_MEAN_RGB, (1, 1, 1)),
    ],
)
def test_normalisation_constants(preprocess, dataset, mean, std) -> None:
    split = random_split(200)
    images, _ = collect(
        make_eval_pipeline(split, batch_size=64, preprocess=preprocess, dataset=dataset)
    )
    expected = (split.x.astype(np.float64) - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(images, expected, rtol=1e-5, atol=1e-5)


def test_computed_stats_come_from_the_training_split() -> None:
    train_split, test_raw = random_split(200, seed=1), random_split(100, seed=2)
    stats = compute_stats(train_split.x)
    test_split = test_raw.with_stats(stats)
    images, _ = collect(
        make_eval_pipeline(
            test_split, batch_size=50, preprocess="meanstd_computed", dataset="cifar10"
        )
    )
    expected = (test_split.x - np.array(stats.mean)) / np.array(stats.std)
    np.testing.assert_allclose(images, expected, rtol=1e-5, atol=1e-4)
    # A training pipeline without recorded stats computes them from its own (training) data.
    normed, _ = train(train_split, augment="none", preprocess="meanstd_computed")
    np.testing.assert_allclose(normed.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(normed.std(axis=(0, 1, 2)), 1, atol=1e-4)
    # An evaluation split never normalises with its own statistics (a seed script did).
    with pytest.raises(ValueError, match="statistics"):
        make_eval_pipeline(test_raw, batch_size=50, preprocess="meanstd_computed", dataset="x")


def test_unknown_names_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="Did you mean: standard"):
        make_train_pipeline(random_split(10), batch_size=4, epoch=0, seed=0, preprocess="none",
                            augment="standart", dataset="cifar10")  # fmt: skip
    with pytest.raises(SpecError, match="preprocess"):
        make_eval_pipeline(random_split(10), batch_size=4, preprocess="zscore", dataset="cifar10")


# ---------------------------------------------------------------- augmentation statistics


def test_flip_rate_is_one_half() -> None:
    x = np.zeros((2048, 32, 32, 3), np.uint8)
    x[:, :, :16] = 255  # bright left half: a flip makes the right half bright
    images, _ = train(Split(x, np.zeros(2048, np.int64)), batch_size=256, seed=3)
    flipped = images[:, :, 24:].mean(axis=(1, 2, 3)) > images[:, :, :8].mean(axis=(1, 2, 3))
    assert abs(flipped.mean() - 0.5) < 0.05


def _blob_split(n: int) -> Split:
    grid = np.arange(32) - 15.5  # centred on the flip axis: flipping leaves it unchanged
    blob = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * 1.5**2))
    image = np.rint(255 * blob).astype(np.uint8)[..., None].repeat(3, axis=-1)
    return Split(np.repeat(image[None], n, axis=0), np.zeros(n, np.int64))


def _centroids(images: np.ndarray) -> np.ndarray:
    mass = images[..., 0].astype(np.float64)
    total = mass.sum(axis=(1, 2))
    rows = (mass.sum(axis=2) * np.arange(32)).sum(axis=1) / total
    cols = (mass.sum(axis=1) * np.arange(32)).sum(axis=1) / total
    return np.stack([rows, cols], axis=1)


@pytest.mark.parametrize("augment", ["standard", "standard_reflect"])
def test_shift_is_continuous_uniform_within_4px(augment: str) -> None:
    split = _blob_split(2048)
    images, _ = train(split, augment=augment, batch_size=256, seed=11)
    shift = _centroids(images) - _centroids(split.x[:1])
    assert np.abs(shift).max() <= 4.0 + 1e-3
    assert np.abs(shift).max() > 3.8  # the whole range is used
    assert np.mean(np.abs(shift - np.rint(shift)) > 0.05) > 0.8  # continuous, not integer
    np.testing.assert_allclose(shift.mean(axis=0), 0, atol=0.2)
    np.testing.assert_allclose(shift.std(axis=0), 8 / np.sqrt(12), rtol=0.08)  # U(-4, 4)


def test_constant_fill_is_zero_after_normalisation() -> None:
    # Every pixel 255: normalised it is (255 - mean) / std > 0; the fill must be exactly 0,
    # which is the mean colour in pixel space (the seeds' cval=0 after normalising).
    images, _ = train(constant_split(512, 255), preprocess="meanstd", dataset="cifar10")
    value = (255 - np.array(CIFAR10_FULL.mean)) / np.array(CIFAR10_FULL.std)
    assert images.min() == 0.0 and np.all(images <= value.max() + 1e-5)
    has_fill = (images == 0).all(axis=-1).any(axis=(1, 2))
    assert has_fill.mean() > 0.9  # only shifts below 1 px in both axes leave no full 0 pixel
    pixel_space = images * np.array(CIFAR10_FULL.std) + np.array(CIFAR10_FULL.mean)
    np.testing.assert_allclose(pixel_space[images[..., 0] == 0][:, 0], CIFAR10_FULL.mean[0])


def test_reflect_fill_never_shows_a_border() -> None:
    images, _ = train(constant_split(256, 200), augment="standard_reflect")
    np.testing.assert_allclose(images, 200.0, rtol=1e-5)
    # Mirror content at the border: a vertical gradient stays within its value range.
    x = np.broadcast_to(np.linspace(10, 250, 32, dtype=np.uint8)[:, None, None], (32, 32, 3))
    out, _ = train(
        Split(np.repeat(x[None], 256, 0), np.zeros(256, np.int64)), augment="standard_reflect"
    )
    assert out.min() >= 10 - 1e-3 and out.max() <= 250 + 1e-3


def test_padcrop_shifts_by_whole_pixels_with_zero_padding() -> None:
    images, _ = train(constant_split(1024, 100), augment="padcrop")
    assert set(np.unique(images)) <= {0.0, 100.0}  # integer crops: no interpolation
    zero_rows = (images[..., 0] == 0).all(axis=2)  # (N, 32) rows entirely from the padding
    zero_cols = (images[..., 0] == 0).all(axis=1)
    top, bottom = zero_rows[:, :5].sum(1), zero_rows[:, -5:].sum(1)
    assert max(top.max(), bottom.max()) == 4 and not np.any((top > 0) & (bottom > 0))
    offsets = np.where(top > 0, -top, bottom)
    assert set(offsets) == set(range(-4, 5))  # all 9 vertical offsets occur
    assert zero_cols.sum(1).max() == 4


# ---------------------------------------------------------------- determinism


def _digest(split: Split, epoch: int, seed: int, augment: str = "standard") -> str:
    images, labels = train(split, augment=augment, epoch=epoch, seed=seed, preprocess="meanstd",
                           dataset="cifar10")  # fmt: skip
    return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()


@pytest.mark.parametrize("augment", ["standard", "standard_reflect", "padcrop"])
def test_each_epoch_depends_only_on_seed_and_epoch(augment: str) -> None:
    split = random_split(300)
    first = _digest(split, epoch=2, seed=5, augment=augment)
    tf.random.set_seed(999)  # global RNG state must not matter
    tf.random.uniform([3])
    _digest(split, epoch=0, seed=5, augment=augment)
    assert _digest(split, epoch=2, seed=5, augment=augment) == first
    assert _digest(split, epoch=3, seed=5, augment=augment) != first
    assert _digest(split, epoch=2, seed=6, augment=augment) != first


def test_epochs_differ_in_order_and_augmentation() -> None:
    split = random_split(256)
    _, ya = train(split, epoch=0, seed=1)
    _, yb = train(split, epoch=1, seed=1)
    assert not np.array_equal(epoch_order(256, 1, 0), epoch_order(256, 1, 1))
    assert not np.array_equal(ya, yb)
    # Same example, different epochs: different augmentation.
    single = Split(split.x[:1].repeat(128, 0), np.zeros(128, np.int64))
    assert not np.array_equal(train(single, epoch=0)[0], train(single, epoch=1)[0])


def test_resumed_process_sees_the_same_batches() -> None:
    """A fresh process (as after a node failure) rebuilds epoch 4 bit for bit."""
    split = random_split(200, seed=3)
    here = _digest(split, epoch=4, seed=9)
    code = (
        "import numpy as np, sys; "
        "from tests.integration.test_pipeline import random_split, _digest;"
        "print(_digest(random_split(200, seed=3), epoch=4, seed=9))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip().splitlines()[-1] == here


def test_eval_pipeline_is_ordered_and_not_augmented() -> None:
    split = random_split(150)
    images, labels = collect(
        make_eval_pipeline(split, batch_size=64, preprocess="none", dataset="x")
    )
    assert np.array_equal(images, split.x.astype(np.float32))
    assert np.array_equal(labels, split.y)


# ---------------------------------------------------------------- reference implementations


@pytest.mark.parametrize(("reflect", "mode"), [(False, "CONSTANT"), (True, "REFLECT")])
def test_warp_equals_tf_projective_transform(reflect: bool, mode: str) -> None:
    from orchestrator.data.augment import axis_weights, warp

    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(64, 32, 32, 3)), tf.float32)
    dy, dx = (tf.constant(rng.uniform(-4, 4, 64), tf.float32) for _ in range(2))
    ours = warp(images, axis_weights(dy, 32, reflect), axis_weights(dx, 32, reflect))
    one, zero = tf.ones_like(dx), tf.zeros_like(dx)
    reference = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=tf.stack([one, zero, -dx, zero, one, -dy, zero, zero], axis=1),
        output_shape=[32, 32],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode=mode,
    )
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), atol=1e-5)


def test_padcrop_equals_literal_pad_and_crop() -> None:
    from orchestrator.data.augment import axis_weights, warp

    rng = np.random.default_rng(1)
    images = rng.normal(size=(16, 32, 32, 3)).astype(np.float32)
    offsets = rng.integers(0, 9, (16, 2))  # crop corner in the padded 40x40 image
    padded = np.pad(images, [(0, 0), (4, 4), (4, 4), (0, 0)])
    expected = np.stack(
        [p[r : r + 32, c : c + 32] for p, (r, c) in zip(padded, offsets, strict=True)]
    )
    shift = tf.constant(4 - offsets, tf.float32)  # cropping at r = shifting content by 4 - r
    ours = warp(
        tf.constant(images),
        axis_weights(shift[:, 0], 32, False),
        axis_weights(shift[:, 1], 32, False),
    )
    np.testing.assert_array_equal(ours.numpy(), expected)
