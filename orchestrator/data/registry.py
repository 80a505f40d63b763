"""The dataset table and `load_dataset`: files -> checked uint8 splits (pure, no TensorFlow).

Nothing here imports TensorFlow, so spec validation can check dataset, preprocessing and
augmentation names (`DATASETS`, `PREPROCESSING`, `AUGMENTATIONS`) in a light process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.data import cifar, download, locate, svhn
from orchestrator.data.base import Dataset, Split, compute_stats
from orchestrator.data.splits import resolve_count, stratified_indices, stratified_split
from orchestrator.errors import DatasetError, SpecError, did_you_mean

AUGMENTATIONS: tuple[str, ...] = ("none", "standard", "standard_reflect", "padcrop")

SYNTHETIC_TRAIN, SYNTHETIC_TEST = 5_000, 1_000  # default sizes of the generated sets


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, without loading it. `offline`: needs no files from the user."""

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    offline: bool
    description: str


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("cifar10", 10, (32, 32, 3), False, "CIFAR-10, 50,000 train / 10,000 test"),
        DatasetInfo("cifar100", 100, (32, 32, 3), False, "CIFAR-100 (fine labels), 50k / 10k"),
        DatasetInfo("svhn", 10, (32, 32, 3), False, "SVHN cropped digits, 73,257 / 26,032"),
        DatasetInfo("digits", 10, (32, 32, 3), True, "scikit-learn digits, 1,438 / 359"),
        DatasetInfo("synthetic", 10, (32, 32, 3), True, "generated, learnable, any size"),
        DatasetInfo("synthetic100", 100, (32, 32, 3), True, "generated, 100 classes"),
    )
}


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def _how_to(url: str, files: str) -> str:
    return (
        f"Fetch {files} from {url}, or set {download.ENV_DOWNLOAD}=1 to let orch "
        "download it where the network allows."
    )


def _find_or_fetch(
    name: str,
    candidates: tuple[str, ...],
    data_dir: str | os.PathLike | None,
    how: str,
    downloads: dict[str, str],
) -> Path:
    """The dataset's files as found, or downloaded into the Keras cache when allowed."""
    try:
        return locate.find(name, candidates, data_dir, how)
    except DatasetError:
        if not download.allowed():
            raise
    for filename, url in downloads.items():
        download.fetch(download.source_url(name, url), filename)
    return locate.find(name, candidates, data_dir, how)


def _load_cifar(layout: cifar.CifarLayout) -> Callable[..., tuple[Split, Split]]:
    def load(data_dir: str | os.PathLike | None, **_: int | None) -> tuple[Split, Split]:
        how = _how_to(layout.url, f"{layout.archive} (or its extracted {layout.folder}/)")
        path = _find_or_fetch(
            layout.name, layout.candidates, data_dir, how, {layout.archive: layout.url}
        )
        return cifar.load_cifar(path, layout)

    return load


def _load_svhn(data_dir: str | os.PathLike | None, **_: int | None) -> tuple[Split, Split]:
    how = _how_to(svhn.URL, f"{svhn.TRAIN_FILE} and {svhn.TEST_FILE}")
    files = {f: svhn.URL.rstrip("/") + "/" + f for f in (svhn.TRAIN_FILE, svhn.TEST_FILE)}
    return svhn.load_svhn(Path(_find_or_fetch("svhn", svhn.CANDIDATES, data_dir, how, files)))


def _load_digits(data_dir: str | os.PathLike | None, **_: int | None) -> tuple[Split, Split]:
    from orchestrator.data.digits import load_digits_splits

    return load_digits_splits()


def _load_synthetic(num_classes: int) -> Callable[..., tuple[Split, Split]]:
    def load(
        data_dir: str | os.PathLike | None, *, train_size: int | None, test_size: int | None
    ) -> tuple[Split, Split]:
        from orchestrator.data.synthetic import load_synthetic_splits

        return load_synthetic_splits(
            num_classes, (32, 32, 3), train_size or SYNTHETIC_TRAIN, test_size or SYNTHETIC_TEST
        )

    return load


_LOADERS: dict[str, Callable[..., tuple[Split, Split]]] = {
    "cifar10": _load_cifar(cifar.CIFAR10),
    "cifar100": _load_cifar(cifar.CIFAR100),
    "svhn": _load_svhn,
    "digits": _load_digits,
    "synthetic": _load_synthetic(10),
    "synthetic100": _load_synthetic(100),
}


def _subset(split: Split, size: int | None, seed: int, key: str) -> Split:
    if size is None or size == len(split):
        return split
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= len(split):
        raise SpecError(
            f"{key}: must be a whole number in 1..{len(split)} (the split's size). "
            f"Received: {key}={size!r}"
        )
    return split.take(stratified_indices(split.y, size, seed))


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    validation_size: float | int = 0,
    seed: int = 0,
    train_size: int | None = None,
    test_size: int | None = None,
) -> Dataset:
    """Load `name` as uint8 splits with int64 labels.

    - `train_size` / `test_size`: a stratified subset of that many images (for fast runs);
      for `synthetic*` they are the numbers of images generated.
    - `validation_size`: a fraction in (0, 1) or a count held out of the (subset) training
      set, stratified, so that model selection never looks at the test set.
    - `seed` picks the subsets and the validation images; it is NOT the trial seed (keep it
      fixed so every trial of a grid validates on the same images). The digits train/test
      split is fixed and ignores it.

    Every split carries the channel statistics of the final training split (`Split.stats`).
    Raises SpecError for an unknown name or bad sizes, DatasetError for missing or damaged
    files.
    """
    if name not in _LOADERS:
        raise SpecError(
            f"dataset: unknown dataset {name!r}; known: {', '.join(list_datasets())}."
            f"{did_you_mean(name, DATASETS)}"
        )
    train, test = _LOADERS[name](data_dir, train_size=train_size, test_size=test_size)
    train = _subset(train, train_size, seed, "train_size")
    test = _subset(test, test_size, seed + 1, "test_size")
    val = None
    count = resolve_count(validation_size, len(train), "validation_size")
    if count:
        kept, held = stratified_split(train.y, count, seed + 2)
        train, val = train.take(kept), train.take(held)
    stats = compute_stats(train.x)
    return Dataset(
        name=name,
        train=train.with_stats(stats),
        val=val.with_stats(stats) if val is not None else None,
        test=test.with_stats(stats),
        num_classes=DATASETS[name].num_classes,
        input_shape=tuple(train.x.shape[1:]),
    )
