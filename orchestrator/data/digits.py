"""`digits`: scikit-learn's bundled handwritten digits, the offline demo dataset.

1,797 real 8x8 images (UCI optdigits test set) with grey levels 0..16. They are scaled to
0..255, resized to 32x32 with bilinear interpolation (half-pixel centres, as
`tf.image.resize` does) and replicated to 3 channels, so every CIFAR model runs on them
unchanged. The train/test split is fixed (20 % test, stratified, seed below) and does not
depend on the trial seed: every trial of every job tests on the same 359 images.
"""

from __future__ import annotations

import functools

import numpy as np

from orchestrator.data.base import Split
from orchestrator.data.splits import stratified_split

SIZE = 32
TEST_FRACTION = 0.2
SPLIT_SEED = 20_240_601  # fixed forever: changing it changes every digits result


def bilinear_matrix(src: int, dst: int) -> np.ndarray:
    """(dst, src) weights of 1-D bilinear resampling with half-pixel centres, edges clamped."""
    centres = (np.arange(dst) + 0.5) * (src / dst) - 0.5
    centres = np.clip(centres, 0, src - 1)
    low = np.floor(centres).astype(np.int64)
    high = np.minimum(low + 1, src - 1)
    frac = centres - low
    weights = np.zeros((dst, src))
    weights[np.arange(dst), low] += 1 - frac
    weights[np.arange(dst), high] += frac
    return weights


def resize_grey(images: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) float images -> (N, size, size) float, separable bilinear resampling."""
    rows = bilinear_matrix(images.shape[1], size)
    cols = bilinear_matrix(images.shape[2], size)
    return np.einsum("ih,nhw,jw->nij", rows, images, cols)


@functools.cache  # fixed data: build once per process; arrays are read-only to keep it so
def load_digits_splits() -> tuple[Split, Split]:
    """(train, test) of the fixed digits split: uint8 (N, 32, 32, 3), int64 labels."""
    from sklearn.datasets import load_digits  # lazy: sklearn costs ~1 s to import

    bunch = load_digits()
    grey = bunch.images.astype(np.float64) * (255.0 / 16.0)
    resized = np.clip(np.rint(resize_grey(grey, SIZE)), 0, 255).astype(np.uint8)
    x = np.repeat(resized[..., None], 3, axis=-1)
    y = bunch.target.astype(np.int64)
    train_idx, test_idx = stratified_split(y, round(TEST_FRACTION * len(y)), SPLIT_SEED)
    arrays = [x[train_idx], y[train_idx], x[test_idx], y[test_idx]]
    for array in arrays:
        array.flags.writeable = False
    return Split(arrays[0], arrays[1]), Split(arrays[2], arrays[3])
