"""Batched, stateless data augmentation inside the tf.data graph.

Every op works on a whole float32 batch (B, H, W, C) at once and draws its randomness
from `tf.random.stateless_*` with an explicit seed, so the same (seed, batch) always
gives the same images: this is what makes a resumed trial bit-identical to an
uninterrupted one. The ops run AFTER normalisation, so a zero fill is the mean colour,
as in the seeds' ImageDataGenerator(fill_mode='constant', cval=0.) (pitfall A8).
"""

from __future__ import annotations

import tensorflow as tf

SHIFT_FRACTION = 0.125  # ImageDataGenerator width/height_shift_range: 4 px of 32
PAD = 4  # pad-and-crop padding, px

AUGMENT_NAMES = ("none", "standard", "standard_reflect", "padcrop")


def random_flip(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Mirror each image left-right with probability 0.5."""
    flip = tf.random.stateless_uniform(tf.shape(images)[:1], seed) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def shift_transforms(batch: tf.Tensor, seed: tf.Tensor, fraction: float, height, width):
    """(B, 8) projective transforms of a continuous shift, uniform in +-fraction * side.

    ImageProjectiveTransformV3 maps an OUTPUT pixel (x, y) to the INPUT point
    (x - dx, y - dy), so the content moves by (+dx, +dy) pixels.
    """
    unit = tf.random.stateless_uniform([batch, 2], seed, -fraction, fraction)
    dx = unit[:, 0] * tf.cast(width, tf.float32)
    dy = unit[:, 1] * tf.cast(height, tf.float32)
    one, zero = tf.ones_like(dx), tf.zeros_like(dx)
    return tf.stack([one, zero, -dx, zero, one, -dy, zero, zero], axis=1)


def random_shift(
    images: tf.Tensor,
    seed: tf.Tensor,
    fill_mode: str = "CONSTANT",
    fraction: float = SHIFT_FRACTION,
) -> tf.Tensor:
    """Shift each image by a continuous random offset, bilinear, filling with 0 or reflecting.

    `fill_mode`: "CONSTANT" (fill 0) or "REFLECT" (d c b a | a b c d, scipy's 'reflect',
    which is what ImageDataGenerator(fill_mode='reflect') used for WRN).
    """
    shape = tf.shape(images)
    transforms = shift_transforms(shape[0], seed, fraction, shape[1], shape[2])
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=shape[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode=fill_mode,
    )


def pad_crop(images: tf.Tensor, seed: tf.Tensor, pad: int = PAD) -> tf.Tensor:
    """Zero-pad by `pad` px, then crop each image back to its size at a random integer offset.

    Vectorised with two batched gathers (rows, then columns) instead of per-image crops.
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offsets = tf.random.stateless_uniform(
        [shape[0], 2], seed, minval=0, maxval=2 * pad + 1, dtype=tf.int32
    )
    rows = offsets[:, :1] + tf.range(height)[None, :]
    cols = offsets[:, 1:] + tf.range(width)[None, :]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def augment_batch(images: tf.Tensor, name: str, seed: tf.Tensor) -> tf.Tensor:
    """Apply augmentation `name` to a normalised float batch with stateless seed `seed` ([2])."""
    if name == "none":
        return images
    flip_seed, move_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if name == "standard":
        return random_shift(random_flip(images, flip_seed), move_seed, "CONSTANT")
    if name == "standard_reflect":
        return random_shift(random_flip(images, flip_seed), move_seed, "REFLECT")
    if name == "padcrop":
        return random_flip(pad_crop(images, move_seed), flip_seed)
    raise ValueError(f"augment: unknown augmentation {name!r}; expected one of {AUGMENT_NAMES}")
