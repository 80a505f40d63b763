"""Per-trial checkpoints keyed by the trial's content key, written atomically.

Layout: ``{storage}/checkpoints/{trial_key}/epoch_0007/{state.npz, meta.json}``. A
resubmitted or retried trial finds its own newest checkpoint here, whatever Tune's
experiment snapshot says (DESIGN.md: Tune may restart trials from scratch after a driver
crash). `storage` is a local or NFS path, or an object-store URI (s3://, gs://, any
pyarrow filesystem) that every node reaches.

Atomicity. On a filesystem, everything is written into a hidden temporary directory,
fsynced, then renamed into place in one step, so a crash mid-write leaves the previous
checkpoint intact. An object store has no rename, but a single PUT is atomic: the arrays
go first and `meta.json` last, as the commit marker; an epoch without it does not exist.
Either way the meta file carries a SHA-256 of the arrays, and a newest checkpoint that
fails to load or to verify is skipped in favour of the one before.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
_PREFIX = "epoch_"


@dataclass
class TrainState:
    """Everything needed to continue a trial exactly where it stopped."""

    epoch: int  # number of epochs completed
    arrays: dict[str, list[np.ndarray]]  # e.g. {"model": [...], "optimizer": [...]}
    meta: dict[str, Any] = field(default_factory=dict)  # elapsed time, best metrics, rng...


def is_uri(storage: str | os.PathLike[str]) -> bool:
    s = str(storage)
    return "://" in s and not s.startswith("file://")


@lru_cache(maxsize=16)
def object_store(uri: str) -> tuple[Any, str]:
    """(pyarrow filesystem, root path) for a storage URI; one client per URI per process."""
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(uri.rstrip("/"))
    except Exception as e:
        from orchestrator.errors import OrchestratorError

        raise OrchestratorError(
            f"storage {uri!r}: cannot open it ({e}). Use a shared filesystem path or a URI "
            "pyarrow can open (s3://bucket/path, gs://...), with its credentials set."
        ) from None


class CheckpointStore:
    def __init__(self, storage: str | os.PathLike[str], trial_key: str, keep: int = 2) -> None:
        self.keep = max(1, keep)
        if is_uri(storage):
            fs, root = object_store(str(storage))
            self.backend: _Backend = _ObjectBackend(fs, f"{root}/checkpoints/{trial_key}")
        else:
            local = str(storage).removeprefix("file://")
            self.backend = _LocalBackend(Path(local) / "checkpoints" / trial_key)

    @property
    def dir(self) -> Path:
        """The trial's checkpoint directory (local storage only)."""
        assert isinstance(self.backend, _LocalBackend)
        return self.backend.dir

    def epochs(self) -> list[int]:
        """Completed checkpoint epochs, oldest first (partial writes ignored)."""
        return self.backend.epochs()

    def save(self, state: TrainState) -> str:
        buf = io.BytesIO()
        flat = {
            f"{group}/{i:05d}": arr
            for group, arrs in state.arrays.items()
            for i, arr in enumerate(arrs)
        }
        np.savez(buf, **flat)
        data = buf.getvalue()
        meta = {
            **state.meta,
            "epoch": state.epoch,
            "sha256": hashlib.sha256(data).hexdigest(),
            "groups": {g: len(a) for g, a in state.arrays.items()},
        }
        where = self.backend.write(state.epoch, data, json.dumps(meta).encode())
        for epoch in self.epochs()[: -self.keep]:
            self.backend.delete(epoch)
        return where

    def latest(self) -> TrainState | None:
        """The newest checkpoint that loads and verifies, or None."""
        for epoch in reversed(self.epochs()):
            try:
                return _decode(*self.backend.read(epoch))
            except Exception as e:  # corrupt or half-deleted: fall back to the one before
                log.warning(
                    "checkpoint epoch %d is unreadable (%s); trying the one before", epoch, e
                )
        return None

    def clear(self) -> None:
        self.backend.clear()


def _decode(data: bytes, meta_bytes: bytes) -> TrainState:
    meta = json.loads(meta_bytes)
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise ValueError("checksum mismatch")
    with np.load(io.BytesIO(data)) as npz:
        arrays = {g: [npz[f"{g}/{i:05d}"] for i in range(n)] for g, n in meta["groups"].items()}
    epoch = int(meta.pop("epoch"))
    meta.pop("sha256")
    meta.pop("groups")
    return TrainState(epoch=epoch, arrays=arrays, meta=meta)


def _name(epoch: int) -> str:
    return f"{_PREFIX}{epoch:04d}"


def _epoch_of(name: str) -> int | None:
    rest = name[len(_PREFIX) :]
    return int(rest) if name.startswith(_PREFIX) and rest.isdigit() else None


class _Backend:
    def epochs(self) -> list[int]: ...
    def write(self, epoch: int, data: bytes, meta: bytes) -> str: ...
    def read(self, epoch: int) -> tuple[bytes, bytes]: ...
    def delete(self, epoch: int) -> None: ...
    def clear(self) -> None: ...


class _LocalBackend(_Backend):
    """A local or NFS directory: write to a temp dir, fsync, rename into place."""

    def __init__(self, path: Path) -> None:
        self.dir = path

    def epochs(self) -> list[int]:
        if not self.dir.is_dir():
            return []
        return sorted(e for p in self.dir.iterdir() if (e := _epoch_of(p.name)) is not None)

    def write(self, epoch: int, data: bytes, meta: bytes) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.dir / _name(epoch)
        tmp = self.dir / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for name, blob in (("state.npz", data), ("meta.json", meta)):
                with open(tmp / name, "wb") as f:
                    f.write(blob)
                    f.flush()
                    os.fsync(f.fileno())
            if final.exists():  # a rerun of the same epoch: replace it
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(self.dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for p in self.dir.glob(".tmp-*"):  # leftovers of a crash mid-write
            shutil.rmtree(p, ignore_errors=True)
        return str(final)

    def read(self, epoch: int) -> tuple[bytes, bytes]:
        path = self.dir / _name(epoch)
        return (path / "state.npz").read_bytes(), (path / "meta.json").read_bytes()

    def delete(self, epoch: int) -> None:
        shutil.rmtree(self.dir / _name(epoch), ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class _ObjectBackend(_Backend):
    """An object store through pyarrow.fs: arrays first, meta.json last (commit marker)."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path = fs, path

    def epochs(self) -> list[int]:
        from pyarrow.fs import FileSelector, FileType

        found = []
        for info in self.fs.get_file_info(FileSelector(self.path, allow_not_found=True)):
            epoch = _epoch_of(info.base_name)
            meta = f"{self.path}/{info.base_name}/meta.json"
            if epoch is not None and self.fs.get_file_info(meta).type == FileType.File:
                found.append(epoch)
        return sorted(found)

    def write(self, epoch: int, data: bytes, meta: bytes) -> str:
        where = f"{self.path}/{_name(epoch)}"
        self.delete(epoch)  # a rerun of the same epoch: no stale commit marker survives
        self.fs.create_dir(where, recursive=True)
        for name, blob in (("state.npz", data), ("meta.json", meta)):
            with self.fs.open_output_stream(f"{where}/{name}") as f:
                f.write(blob)
        return where

    def read(self, epoch: int) -> tuple[bytes, bytes]:
        where = f"{self.path}/{_name(epoch)}"
        blobs = []
        for name in ("state.npz", "meta.json"):
            with self.fs.open_input_stream(f"{where}/{name}") as f:
                blobs.append(f.readall())
        return blobs[0], blobs[1]

    def delete(self, epoch: int) -> None:
        from pyarrow.fs import FileType

        where = f"{self.path}/{_name(epoch)}"
        if self.fs.get_file_info(where).type != FileType.NotFound:
            self.fs.delete_dir(where)

    def clear(self) -> None:
        from pyarrow.fs import FileType

        if self.fs.get_file_info(self.path).type != FileType.NotFound:
            self.fs.delete_dir(self.path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
