"""Fetching a missing dataset on first use, as keras.datasets does, unless orch is offline.

orch reads datasets from files (locate.py). A dataset found nowhere is downloaded once into
the Keras cache, where the next run (and every trial on that node) finds it:

- each file is checked against the checksum its publisher gives (CIFAR: the md5 sums on
  https://www.cs.toronto.edu/~kriz/cifar.html; SVHN: the md5 sums torchvision and others
  pin, as the SVHN page publishes none), so a mirror serving another file, or a cut
  download, never passes for the dataset;
- the bytes go to a temporary name beside the target and are renamed into place only when
  complete and checked (atomic on one filesystem), so concurrent trials on one node and a
  killed download never leave a half file;
- `ORCH_OFFLINE=1` (or `offline = true` in .orch/config.toml) forbids the network: the
  error then names the file, where to get it and where to put it;
- `ORCH_DATASET_URL_<NAME>` points at a mirror (same files, same checksums): a URL ending
  in `/` is a folder holding every file of the dataset.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import DatasetError

ENV_OFFLINE = "ORCH_OFFLINE"
ENV_DOWNLOAD = "ORCH_DOWNLOAD"  # older switch: ORCH_DOWNLOAD=0 also means offline
TIMEOUT_S = 60.0
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Remote:
    """One published file: where it lives and the checksum its publisher gives."""

    filename: str
    url: str
    md5: str


def offline() -> bool:
    """True when the network must not be used for datasets (env first, then config)."""
    value = os.environ.get(ENV_OFFLINE, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if os.environ.get(ENV_DOWNLOAD, "").strip().lower() in _FALSE:
        return True
    from orchestrator.config import config_flag

    return config_flag("offline")


def allowed() -> bool:
    return not offline()


def source_url(dataset: str, default: str, what: str = "dataset") -> str:
    """The URL to fetch from: ORCH_DATASET_URL_<NAME> (ORCH_WEIGHTS_URL_<NAME> for model
    weights) points at a mirror."""
    env = "ORCH_WEIGHTS_URL_" if what == "weights" else "ORCH_DATASET_URL_"
    return os.environ.get(env + dataset.upper(), default)


def cache_dir() -> Path:
    home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(home).expanduser() / "datasets"


def fetch(
    remote: Remote, dataset: str, dest_dir: Path | None = None, *, what: str = "dataset"
) -> Path:
    """Download `remote` into the Keras cache (or `dest_dir`), checked and atomic.
    `what` ("dataset" or "weights") only changes the wording and the mirror variable.

    Raises DatasetError when offline, when the network fails, or when the file's md5 is not
    the published one; nothing is left behind in any of these cases.
    """
    url = source_url(dataset, remote.url, what)
    if url.endswith("/"):  # a mirror folder holding every file of the dataset
        url += remote.filename
    dest = (dest_dir or cache_dir()) / remote.filename
    if offline():
        raise DatasetError(
            f"{remote.filename} for {what} {dataset!r} is missing and orch is offline "
            f"({ENV_OFFLINE}=1 or offline = true in .orch/config.toml). Fetch {url} on a "
            f"machine with internet access and put it in {dest.parent} (or in $ORCH_DATA_DIR)."
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatasetError(
            f"cannot create {dest.parent} for {remote.filename} ({e}). Set KERAS_HOME or "
            "ORCH_DATA_DIR to a writable directory."
        ) from None
    part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(part, "wb") as f:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                f.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", e)
        raise DatasetError(
            f"downloading {url} failed ({reason}). Fetch {remote.filename} on a machine with "
            f"internet access and put it in {dest.parent}, or point ORCH_DATA_DIR at it; "
            f"{ENV_OFFLINE}=1 stops orch from trying."
        ) from None
    if digest.hexdigest() != remote.md5:
        part.unlink(missing_ok=True)
        raise DatasetError(
            f"downloading {url}: md5 {digest.hexdigest()} is not the published "
            f"{remote.md5} of {remote.filename}; the download is damaged or the server "
            "serves another file. Nothing was kept; try again, or fetch the official file."
        )
    os.replace(part, dest)
    return dest
