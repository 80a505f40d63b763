"""tf.data input pipelines: shuffle, batch, normalise and augment, deterministic per epoch.

The training pipeline of epoch e depends only on (split, seed, e):
  - the order is a numpy permutation seeded with (seed, e);
  - batch i is augmented with the stateless seed (hash(seed, e), i).
So a trial resumed at epoch k sees exactly the batches an uninterrupted run would, and the
trainer builds one pipeline per epoch (cheap: nothing is copied into the graph).
Normalisation and augmentation run on whole batches (map after batch), never per image.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from orchestrator.data.augment import augment_batch
from orchestrator.data.base import ChannelStats, Split, compute_stats
from orchestrator.data.normalization import Normalization, needs_stats, normalization
from orchestrator.data.registry import AUGMENTATIONS
from orchestrator.errors import SpecError, did_you_mean

_AUGMENT_STREAM = 0x5EED  # separates the augmentation seeds from the shuffle seeds


def _check_seed(seed: int, epoch: int) -> None:
    if seed < 0 or epoch < 0:
        raise ValueError(f"seed and epoch must be >= 0. Received: seed={seed}, epoch={epoch}")


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of epoch `epoch`: a permutation of range(n) fixed by (seed, epoch)."""
    _check_seed(seed, epoch)
    return np.random.default_rng([seed, epoch]).permutation(n)


def augment_seed(seed: int, epoch: int) -> int:
    """The first half of every batch's stateless seed in epoch `epoch` (the second: batch index)."""
    _check_seed(seed, epoch)
    state = np.random.SeedSequence([seed, epoch, _AUGMENT_STREAM]).generate_state(1, np.uint32)
    return int(state[0])


def steps_per_epoch(n: int, batch_size: int, drop_remainder: bool = False) -> int:
    return n // batch_size if drop_remainder else -(-n // batch_size)


def _normaliser(split: Split, preprocess: str, dataset: str, stats: ChannelStats | None):
    stats = stats or split.stats
    if stats is None and needs_stats(preprocess, dataset):
        raise ValueError(
            f"preprocess={preprocess!r} on {dataset!r} needs training-split statistics; "
            f"use a split from load_dataset() or pass stats=."
        )
    norm: Normalization = normalization(preprocess, dataset, split.x.shape[-1], stats)
    mean = tf.constant(norm.mean, tf.float32)
    inv_std = tf.constant([1.0 / s for s in norm.std], tf.float32)

    def apply(images: tf.Tensor) -> tf.Tensor:
        return (tf.cast(images, tf.float32) - mean) * inv_std

    return apply


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SpecError(f"batch_size: must be a positive integer. Received: {batch_size!r}")


def make_train_pipeline(
    split: Split,
    *,
    batch_size: int,
    epoch: int,
    seed: int,
    preprocess: str,
    augment: str,
    dataset: str,
    drop_remainder: bool = False,
    stats: ChannelStats | None = None,
) -> tf.data.Dataset:
    """Batches (float32 images (B, H, W, C), int64 labels (B,)) of one training epoch.

    `stats` overrides the split's training statistics (for `meanstd_computed` and
    datasets without published constants); when both are missing they are computed from
    `split` itself, which is the training split here.
    """
    _check_batch_size(batch_size)
    if augment not in AUGMENTATIONS:
        raise SpecError(
            f"augment: unknown augmentation {augment!r}; expected one of "
            f"{', '.join(AUGMENTATIONS)}.{did_you_mean(augment, AUGMENTATIONS)}"
        )
    if stats is None and split.stats is None and needs_stats(preprocess, dataset):
        stats = compute_stats(split.x)
    normalise = _normaliser(split, preprocess, dataset, stats)
    order = epoch_order(len(split), seed, epoch)
    base = tf.constant(augment_seed(seed, epoch), tf.int64)

    def transform(index: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]):
        images, labels = batch
        images = augment_batch(normalise(images), augment, tf.stack([base, index]))
        return images, labels

    data = tf.data.Dataset.from_tensor_slices((split.x[order], split.y[order]))
    data = data.batch(batch_size, drop_remainder=drop_remainder).enumerate()
    data = data.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)


def make_eval_pipeline(
    split: Split,
    *,
    batch_size: int,
    preprocess: str,
    dataset: str,
    stats: ChannelStats | None = None,
) -> tf.data.Dataset:
    """Batches of `split` in order, normalised with TRAINING statistics, not augmented.

    Computed statistics come from `stats` or `split.stats` (recorded by load_dataset from
    the training split) and are never computed from the evaluated split.
    """
    _check_batch_size(batch_size)
    normalise = _normaliser(split, preprocess, dataset, stats)
    data = tf.data.Dataset.from_tensor_slices((split.x, split.y)).batch(batch_size)
    data = data.map(
        lambda images, labels: (normalise(images), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return data.prefetch(tf.data.AUTOTUNE)
