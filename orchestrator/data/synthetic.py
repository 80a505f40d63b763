"""`synthetic`: generated, deterministic, learnable images for tests and benchmarks.

Each class has a fixed smooth colour template (a coarse random grid, bilinearly upsampled);
an image is its class template, moved by a random shift of up to 1/8 of the side and
covered in Gaussian pixel noise. A small CNN separates the classes within an epoch or two,
and nothing depends on files, so the benchmark and the test suite run anywhere.
"""

from __future__ import annotations

import numpy as np

from orchestrator.data.base import Split
from orchestrator.data.digits import bilinear_matrix

TEMPLATE_SEED = 7_919  # templates: the same for every split and every call
TRAIN_SEED, TEST_SEED = 1, 2  # image noise: train and test never share a draw
NOISE_STD = 48.0  # uint8 units; templates span ~0..255, so classes stay separable
_CHUNK = 2048  # images generated at once (bounds float64 temporaries to ~50 MB at 32x32x3)


def templates(num_classes: int, shape: tuple[int, int, int]) -> np.ndarray:
    """(num_classes, H, W, C) float templates in 0..255: a 4x4 colour grid upsampled."""
    height, width, channels = shape
    coarse = np.random.default_rng(TEMPLATE_SEED).uniform(0, 255, (num_classes, 4, 4, channels))
    rows, cols = bilinear_matrix(4, height), bilinear_matrix(4, width)
    return np.einsum("ih,nhwc,jw->nijc", rows, coarse, cols)


def generate(
    count: int, num_classes: int, shape: tuple[int, int, int], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`count` images (uint8) and labels (int64, balanced) drawn with `seed`."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count, dtype=np.int64) % num_classes)
    base = templates(num_classes, shape)
    max_shift = max(1, shape[0] // 8)
    images = np.empty((count, *shape), np.uint8)
    for start in range(0, count, _CHUNK):
        y = labels[start : start + _CHUNK]
        batch = base[y]
        dy, dx = rng.integers(-max_shift, max_shift + 1, (2, len(y)))
        for i in range(len(y)):  # integer roll: cheap, and keeps images class-recognisable
            batch[i] = np.roll(batch[i], (dy[i], dx[i]), axis=(0, 1))
        batch += rng.normal(0.0, NOISE_STD, batch.shape)
        images[start : start + len(y)] = np.clip(np.rint(batch), 0, 255).astype(np.uint8)
    return images, labels


def load_synthetic_splits(
    num_classes: int, shape: tuple[int, int, int], train_size: int, test_size: int
) -> tuple[Split, Split]:
    x_train, y_train = generate(train_size, num_classes, shape, TRAIN_SEED)
    x_test, y_test = generate(test_size, num_classes, shape, TEST_SEED)
    return Split(x_train, y_train), Split(x_test, y_test)
