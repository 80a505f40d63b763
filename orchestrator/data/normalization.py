"""Preprocessing names and the per-channel constants behind them (pure, no TensorFlow).

Every mode is an affine map x' = (x - mean) / std per channel on uint8 pixel values:

  none              x as float (0..255)
  scale             x / 255
  meanstd           the seeds' constants: CIFAR-10 "full" stats for cifar10, the htd
                    CIFAR-100 stats for cifar100; other datasets (digits, synthetic, svhn)
                    have no published constants and use stats computed on their train split
  meanstd_rounded   the rounded CIFAR-10 stats (WRN, ResNeXt, htd); cifar100 keeps its
                    (already rounded) stats; others: computed stats rounded to 0.1
  meanstd_computed  stats computed on the training split the data came from
  vgg_mean          subtract the ImageNet means 123.680/116.779/103.939 from R/G/B, no std
                    (VGG19 script; RGB order, as the seed did)
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.data.base import ChannelStats
from orchestrator.errors import SpecError, did_you_mean

PREPROCESSING: tuple[str, ...] = (
    "none",
    "scale",
    "meanstd",
    "meanstd_rounded",
    "meanstd_computed",
    "vgg_mean",
)

CIFAR10_FULL = ChannelStats((125.307, 122.95, 113.865), (62.9932, 62.0887, 66.7048))
CIFAR10_ROUNDED = ChannelStats((125.3, 123.0, 113.9), (63.0, 62.1, 66.7))
CIFAR100_STATS = ChannelStats((129.3, 124.1, 112.4), (68.2, 65.4, 70.4))
VGG_MEAN_RGB = (123.680, 116.779, 103.939)

_PUBLISHED: dict[tuple[str, str], ChannelStats] = {
    ("meanstd", "cifar10"): CIFAR10_FULL,
    ("meanstd_rounded", "cifar10"): CIFAR10_ROUNDED,
    ("meanstd", "cifar100"): CIFAR100_STATS,
    ("meanstd_rounded", "cifar100"): CIFAR100_STATS,
}


@dataclass(frozen=True)
class Normalization:
    """x' = (x - mean) / std, per channel, on uint8 pixel values."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


def check_preprocess(preprocess: str) -> None:
    if preprocess not in PREPROCESSING:
        raise SpecError(
            f"preprocess: unknown preprocessing {preprocess!r}; expected one of "
            f"{', '.join(PREPROCESSING)}.{did_you_mean(preprocess, PREPROCESSING)}"
        )


def needs_stats(preprocess: str, dataset: str) -> bool:
    """Whether `preprocess` on `dataset` needs statistics computed from a training split."""
    check_preprocess(preprocess)
    if preprocess == "meanstd_computed":
        return True
    return preprocess in {"meanstd", "meanstd_rounded"} and (preprocess, dataset) not in _PUBLISHED


def normalization(
    preprocess: str, dataset: str, channels: int, stats: ChannelStats | None
) -> Normalization:
    """The constants of `preprocess` for `dataset`; `stats` are the training-split stats.

    Raises SpecError for an unknown name, ValueError when computed stats are needed but
    `stats` is None, or when a 3-channel mode meets images with another channel count.
    """
    check_preprocess(preprocess)
    if preprocess == "none":
        return Normalization((0.0,) * channels, (1.0,) * channels)
    if preprocess == "scale":
        return Normalization((0.0,) * channels, (255.0,) * channels)
    if preprocess == "vgg_mean":
        chosen = ChannelStats(VGG_MEAN_RGB, (1.0, 1.0, 1.0))
    elif (preprocess, dataset) in _PUBLISHED:
        chosen = _PUBLISHED[(preprocess, dataset)]
    elif stats is None:
        raise ValueError(
            f"preprocess={preprocess!r} on {dataset!r} needs the training split's channel "
            f"statistics; load the data with load_dataset() (which records them on every "
            f"split) or pass stats=compute_stats(train.x)."
        )
    else:
        chosen = stats.rounded(1) if preprocess == "meanstd_rounded" else stats
    if len(chosen.mean) != channels:
        raise ValueError(
            f"preprocess={preprocess!r} has {len(chosen.mean)} channel constants but the "
            f"images have {channels} channels."
        )
    return Normalization(tuple(chosen.mean), tuple(chosen.std))
