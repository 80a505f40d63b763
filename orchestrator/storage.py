"""Where orch's shared storage is and how to open it: a local or NFS path, or an
object-store URI (s3://, gs://, any pyarrow filesystem) that every node reaches.

Checkpoints (training/checkpoint.py), stop requests (scheduling/adapters/control.py), the
writability probe (stores.py) and `orch cluster check` (scheduling/adapters/inventory.py)
all read the storage setting the same way, so the rule lives here, in neither package.
pyarrow is imported only when a URI is opened.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from orchestrator.errors import OrchestratorError

# Probe files go here, under the storage root: the writability check before training
# (stores.py) and `orch cluster check`'s sharing check (scheduling/adapters/inventory.py).
PROBE_DIR = ".orch-probe"


def is_uri(storage: str | os.PathLike[str]) -> bool:
    """An object-store URI; `file://...` is a local path written as a URI."""
    s = str(storage)
    return "://" in s and not s.startswith("file://")


def local_path(storage: str | os.PathLike[str]) -> Path:
    """The directory a local storage setting names (`file://` dropped), as written."""
    return Path(str(storage).removeprefix("file://"))


@lru_cache(maxsize=16)
def object_store(uri: str) -> tuple[Any, str]:
    """(pyarrow filesystem, root path) for a storage URI; one client per URI per process."""
    from pyarrow import fs

    try:
        opened: tuple[Any, str] = fs.FileSystem.from_uri(uri.rstrip("/"))
    except Exception as e:
        raise OrchestratorError(
            f"storage {uri!r}: cannot open it ({e}). Use a shared filesystem path or a URI "
            "pyarrow can open (s3://bucket/path, gs://...), with its credentials set."
        ) from None
    return opened
