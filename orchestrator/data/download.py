"""Fetching a missing dataset, only when the user allows it and the network does.

orch reads datasets from files (locate.py). With ORCH_DOWNLOAD=1 a dataset that is found
nowhere is downloaded once into the Keras cache, where the next run finds it; the download
goes to a temporary name and is renamed into place only when complete, and the loader then
checks it like any user-provided archive, so a cut connection never leaves a half file
that passes for a dataset. `ORCH_DATASET_URL_<NAME>` points at a mirror.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from orchestrator.errors import DatasetError

ENV_DOWNLOAD = "ORCH_DOWNLOAD"
TIMEOUT_S = 60.0


def allowed() -> bool:
    return os.environ.get(ENV_DOWNLOAD, "").lower() in ("1", "true", "yes")


def source_url(dataset: str, default: str) -> str:
    return os.environ.get(f"ORCH_DATASET_URL_{dataset.upper()}", default)


def cache_dir() -> Path:
    home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(home).expanduser() / "datasets"


def fetch(url: str, filename: str) -> Path:
    """Download `url` to the Keras cache as `filename`; DatasetError if the network fails."""
    dest = cache_dir() / filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(part, "wb") as f:
            shutil.copyfileobj(response, f, length=1 << 20)
        os.replace(part, dest)
    except (urllib.error.URLError, OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", e)
        raise DatasetError(
            f"downloading {url} failed ({reason}). Fetch {filename} on a machine with "
            f"internet access and put it in {dest.parent}, or point ORCH_DATA_DIR at it."
        ) from None
    return dest
