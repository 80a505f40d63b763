"""The in-memory form of a dataset: uint8 images and int64 labels, split three ways.

Images stay uint8 until the input pipeline casts each batch, so a CIFAR-sized training set
costs 150 MB instead of 600 MB of float32, and every preprocessing choice is applied the
same way (inside the tf.data graph) for training and evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Chunk for the statistics pass: bounds the float64 temporary to ~80 MB at 32x32x3.
_STATS_CHUNK = 4096


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel mean and (population) std of a training split, in uint8 units (0..255)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def rounded(self, ndigits: int = 1) -> ChannelStats:
        return ChannelStats(
            tuple(round(m, ndigits) for m in self.mean), tuple(round(s, ndigits) for s in self.std)
        )


@dataclass(frozen=True, eq=False)  # eq=False: array equality is elementwise, not a bool
class Split:
    """One split. x: uint8 (N, H, W, C); y: int64 (N,).

    `stats` are the channel statistics of the TRAINING split this split belongs to (also on
    the validation and test splits), so that an evaluation pipeline normalising with
    computed statistics never computes them on the test set (a seed script did).
    """

    x: np.ndarray
    y: np.ndarray
    stats: ChannelStats | None = None

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.x.dtype != np.uint8:
            raise ValueError(
                f"Split.x must be uint8 (N, H, W, C). Received: {self.x.dtype} {self.x.shape}"
            )
        if self.y.ndim != 1 or self.y.shape[0] != self.x.shape[0]:
            raise ValueError(
                f"Split.y must be (N,) with N = {self.x.shape[0]}. Received: {self.y.shape}"
            )
        if self.y.dtype != np.int64:
            raise ValueError(f"Split.y must be int64. Received: {self.y.dtype}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, indices: np.ndarray) -> Split:
        """The sub-split at `indices` (a copy), keeping the training statistics."""
        return Split(self.x[indices], self.y[indices], self.stats)

    def with_stats(self, stats: ChannelStats | None) -> Split:
        return Split(self.x, self.y, stats)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset. `val` is held out of the training set (None when not asked for)."""

    name: str
    train: Split
    val: Split | None
    test: Split
    num_classes: int
    input_shape: tuple[int, int, int]
    files: tuple[str, ...] = ()  # what was read (archives, .mat files); () when generated


def compute_stats(x: np.ndarray) -> ChannelStats:
    """Per-channel mean and population std (ddof=0, like the seeds' np.std) of uint8 images."""
    channels = x.shape[-1]
    total = np.zeros(channels, np.float64)
    total_sq = np.zeros(channels, np.float64)
    for start in range(0, x.shape[0], _STATS_CHUNK):
        chunk = x[start : start + _STATS_CHUNK].reshape(-1, channels).astype(np.float64)
        total += chunk.sum(axis=0)
        total_sq += np.square(chunk).sum(axis=0)
    count = max(1, x.shape[0] * x.shape[1] * x.shape[2])
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return ChannelStats(tuple(float(m) for m in mean), tuple(float(s) for s in std))
