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
    """What a dataset is, without loading it: the one place its facts are kept.

    `offline`: needs no files from the user. `train_images` / `test_images`: the images
    in the full splits (None: generated, any size); `orch validate` checks train_size,
    test_size and validation_size against them, as the loader would, and `orch plan`
    sizes an epoch with them.
    """

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    offline: bool
    description: str
    train_images: int | None = None
    test_images: int | None = None

    def split_sizes(self) -> tuple[int, int]:
        """Images in the full train and test splits; for a generated set, its default sizes."""
        if self.train_images is None or self.test_images is None:
            return SYNTHETIC_TRAIN, SYNTHETIC_TEST
        return self.train_images, self.test_images


_CIFAR = cifar.FULL_TRAIN, cifar.FULL_TEST
_SVHN = svhn.IMAGES[svhn.TRAIN_FILE], svhn.IMAGES[svhn.TEST_FILE]
_SVHN_EXTRA = _SVHN[0] + svhn.IMAGES[svhn.EXTRA_FILE], _SVHN[1]
_RGB32 = (32, 32, 3)
DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("cifar10", 10, _RGB32, False, "CIFAR-10", *_CIFAR),
        DatasetInfo("cifar100", 100, _RGB32, False, "CIFAR-100 (fine labels)", *_CIFAR),
        DatasetInfo("svhn", 10, _RGB32, False, "SVHN cropped digits", *_SVHN),
        DatasetInfo("svhn_extra", 10, _RGB32, False, "SVHN train + extra", *_SVHN_EXTRA),
        DatasetInfo(
            "digits", 10, _RGB32, True, "scikit-learn digits, a fixed 80/20 split", 1_438, 359
        ),
        DatasetInfo("synthetic", 10, _RGB32, True, "generated, learnable, any size"),
        DatasetInfo("synthetic100", 100, _RGB32, True, "generated, 100 classes"),
    )
}


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def _how_to(url: str, files: str) -> str:
    if download.offline():
        return (
            f"orch is offline ({download.ENV_OFFLINE}=1 or offline = true in "
            f".orch/config.toml), so it does not download: fetch {files} from {url} on a "
            "machine with internet access."
        )
    return f"Fetch {files} from {url}."


class NotFetchedYet(DatasetError):
    """The files are not on this machine yet, and orch may download them on first use."""


def _find_or_fetch(
    name: str,
    candidates: tuple[str, ...],
    data_dir: str | os.PathLike | None,
    how: str,
    remotes: tuple[download.Remote, ...],
    fetch: bool = True,
) -> Path:
    """The dataset's files as found, else downloaded (checked) into the Keras cache, unless
    orch is offline: then the error lists every place looked in and how to get the files.
    fetch=False only looks (NotFetchedYet when a download would follow).

    `remotes[0]` is the file `candidates` name; the others must lie beside it. Where no
    directory holds them all, the Keras cache gets the ones it lacks: SVHN's extra file is
    fetched for svhn_extra even when an earlier svhn run left train and test there.
    """
    beside = [r.filename for r in remotes[1:]]
    try:
        return locate.find(name, candidates, data_dir, how, beside)
    except DatasetError:
        if download.offline():
            raise
    missing = [r for r in remotes if not (download.cache_dir() / r.filename).exists()]
    if not fetch:
        urls = ", ".join(download.source_url(name, r.url) for r in missing or remotes)
        raise NotFetchedYet(f"not on this machine yet; fetched on first use from {urls}")
    for remote in missing:
        download.fetch(remote, name)
    return locate.find(name, candidates, data_dir, how, beside)


# The published md5 of every file orch downloads (read at download time, so a test can
# serve its own small archive under the official name).
CHECKSUMS: dict[str, str] = {
    cifar.CIFAR10.archive: cifar.CIFAR10.md5,
    cifar.CIFAR100.archive: cifar.CIFAR100.md5,
    **svhn.MD5,
}


def _cifar_remote(layout: cifar.CifarLayout) -> tuple[download.Remote, ...]:
    return (download.Remote(layout.archive, layout.url, CHECKSUMS[layout.archive]),)


def _svhn_remotes(extra: bool) -> tuple[download.Remote, ...]:
    names = (svhn.TRAIN_FILE, svhn.TEST_FILE) + ((svhn.EXTRA_FILE,) if extra else ())
    return tuple(download.Remote(n, svhn.URL + n, CHECKSUMS[n]) for n in names)


def dataset_files(
    name: str, data_dir: str | os.PathLike | None = None, *, fetch: bool = True
) -> list[Path]:
    """The files (or extracted folders) `name` is read from, found or fetched now.

    [] for the datasets that need no files. This is what `load_dataset` reads and what the
    per-node check before a launch asks for; DatasetError names what is missing and where
    it was looked for. fetch=False never downloads (NotFetchedYet instead).
    """
    if name in ("cifar10", "cifar100"):
        layout = cifar.CIFAR10 if name == "cifar10" else cifar.CIFAR100
        how = _how_to(layout.url, f"{layout.archive} (or its extracted {layout.folder}/)")
        remotes = _cifar_remote(layout)
        return [_find_or_fetch(name, layout.candidates, data_dir, how, remotes, fetch)]
    if name in ("svhn", "svhn_extra"):
        extra = name == "svhn_extra"
        wanted = f"{svhn.TRAIN_FILE}, {svhn.TEST_FILE}" + (f", {svhn.EXTRA_FILE}" if extra else "")
        how = _how_to(svhn.URL, wanted)
        train = _find_or_fetch(name, svhn.CANDIDATES, data_dir, how, _svhn_remotes(extra), fetch)
        return svhn.files(train, extra=extra)
    if name not in DATASETS:
        raise SpecError(
            f"dataset: unknown dataset {name!r}; known: {', '.join(list_datasets())}."
            f"{did_you_mean(name, DATASETS)}"
        )
    return []


def _load_cifar(layout: cifar.CifarLayout) -> Callable[..., tuple[Split, Split]]:
    def load(data_dir: str | os.PathLike | None, **_: int | None) -> tuple[Split, Split]:
        (path,) = dataset_files(layout.name, data_dir)
        return cifar.load_cifar(path, layout)

    return load


def _load_svhn(extra: bool) -> Callable[..., tuple[Split, Split]]:
    def load(data_dir: str | os.PathLike | None, **_: int | None) -> tuple[Split, Split]:
        train = dataset_files("svhn_extra" if extra else "svhn", data_dir)[0]
        return svhn.load_svhn(train, extra=extra)

    return load


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
    "svhn": _load_svhn(extra=False),
    "svhn_extra": _load_svhn(extra=True),
    "digits": _load_digits,
    "synthetic": _load_synthetic(10),
    "synthetic100": _load_synthetic(100),
}


def check_subset_size(size: int | None, total: int, key: str) -> None:
    """train_size / test_size against the split's `total` images (also run by validate)."""
    if size is None or size == total:
        return
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= total:
        raise SpecError(
            f"{key}: must be a whole number in 1..{total} (the split's size). "
            f"Received: {key}={size!r}"
        )


def _subset(split: Split, size: int | None, seed: int, key: str) -> Split:
    check_subset_size(size, len(split), key)
    if size is None or size == len(split):
        return split
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
        files=tuple(str(f) for f in dataset_files(name, data_dir)),
    )
