"""SVHN (cropped digits) from `train_32x32.mat`, `test_32x32.mat` and `extra_32x32.mat`.

The .mat files hold X as (32, 32, 3, N) uint8 and y as (N, 1) with labels 1..10, where 10
stands for the digit 0; orch maps it to label 0 so labels equal digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from orchestrator.data.base import Split
from orchestrator.errors import DatasetError

TRAIN_FILE, TEST_FILE, EXTRA_FILE = "train_32x32.mat", "test_32x32.mat", "extra_32x32.mat"
CANDIDATES = (TRAIN_FILE, f"svhn/{TRAIN_FILE}")
URL = "http://ufldl.stanford.edu/housenumbers/"
# Images in each official file.
IMAGES = {TRAIN_FILE: 73_257, TEST_FILE: 26_032, EXTRA_FILE: 531_131}
# The SVHN page publishes no checksums; these are the md5 sums torchvision pins for the
# official files (checked by orch's download, data/download.py).
MD5 = {
    TRAIN_FILE: "e26dedcc434d2e4c54c9b2d4a06d8373",
    TEST_FILE: "eb5a983be6a315427106f1b164d9cef3",
    EXTRA_FILE: "a93ce644f1a588dc4d68dda5feec44a7",
}


def _load_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat  # lazy: only SVHN needs scipy.io

    if not path.is_file():
        raise DatasetError(f"{path}: missing (SVHN needs both {TRAIN_FILE} and {TEST_FILE}).")
    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises ValueError, OSError, MatReadError, ...
        raise DatasetError(
            f"{path}: cannot read the .mat file ({exc}); download it again."
        ) from exc
    x, y = mat.get("X"), mat.get("y")
    if x is None or y is None:
        raise DatasetError(f"{path}: expected variables 'X' and 'y'. Received: {sorted(mat)}")
    y = np.asarray(y).reshape(-1)
    if x.dtype != np.uint8 or x.shape[:3] != (32, 32, 3) or x.ndim != 4 or x.shape[3] != len(y):
        raise DatasetError(
            f"{path}: X must be uint8 (32, 32, 3, N) with N = {len(y)} labels. "
            f"Received: {x.dtype} {x.shape}"
        )
    if y.size and (y.min() < 1 or y.max() > 10):
        raise DatasetError(f"{path}: labels must lie in 1..10 (10 = digit 0).")
    images = np.ascontiguousarray(np.transpose(x, (3, 0, 1, 2)))
    return images, (y.astype(np.int64) % 10)


def files(train_path: Path, *, extra: bool = False) -> list[Path]:
    """The files `load_svhn` reads, given where the training file is."""
    names = (TRAIN_FILE, EXTRA_FILE, TEST_FILE) if extra else (TRAIN_FILE, TEST_FILE)
    return [train_path.parent / n for n in names]


def load_svhn(train_path: Path, *, extra: bool = False) -> tuple[Split, Split]:
    """(train, test) from `train_path` and the test file beside it; `extra` appends the
    images of extra_32x32.mat to the training set (the DenseNet paper's SVHN)."""
    x, y = _load_mat(train_path)
    if extra:
        ex, ey = _load_mat(train_path.parent / EXTRA_FILE)
        x, y = np.concatenate([x, ex]), np.concatenate([y, ey])
    test = _load_mat(train_path.parent / TEST_FILE)
    return Split(x, y), Split(*test)
