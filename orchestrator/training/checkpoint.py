"""Per-trial checkpoints keyed by the trial's content key, written atomically.

Layout: ``{storage}/checkpoints/{trial_key}/epoch_0007/{state.npz, meta.json}`` (a
re-save of the same epoch: ``epoch_0007.v1``, ``.v2``...; the highest loadable wins). A
resubmitted or retried trial finds its own newest checkpoint here, whatever Tune's
experiment snapshot says (Tune may restart trials from scratch after a driver
crash). `storage` is a local or NFS path, or an object-store URI (s3://, gs://, any
pyarrow filesystem) that every node reaches.

Atomicity. On a filesystem, everything is written into a hidden temporary directory,
fsynced, then renamed to a name that does not exist yet, in one step; older checkpoints
(older epochs, older versions of the same epoch) are deleted only after that. A kill at
any instant therefore leaves the previous checkpoint intact and loadable. An object store
has no rename, but a single PUT is atomic: the arrays go first and `meta.json` last, as
the commit marker; an epoch without it does not exist, and a re-save writes a new version.
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
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from orchestrator.storage import is_uri, local_path, object_store

log = logging.getLogger(__name__)
_PREFIX = "epoch_"


@dataclass
class TrainState:
    """Everything needed to continue a trial exactly where it stopped."""

    epoch: int  # number of epochs completed
    arrays: dict[str, list[np.ndarray]]  # e.g. {"model": [...], "optimizer": [...]}
    meta: dict[str, Any] = field(default_factory=dict)  # elapsed time, best metrics, rng...


class CheckpointStore:
    def __init__(self, storage: str | os.PathLike[str], trial_key: str, keep: int = 2) -> None:
        self.keep = max(1, keep)
        if is_uri(storage):
            fs, root = object_store(str(storage))
            self.backend: _Backend = _ObjectBackend(fs, f"{root}/checkpoints/{trial_key}")
        else:
            self.backend = _LocalBackend(local_path(storage) / "checkpoints" / trial_key)

    @property
    def dir(self) -> Path:
        """The trial's checkpoint directory (local storage only)."""
        assert isinstance(self.backend, _LocalBackend)
        return self.backend.dir

    def epochs(self) -> list[int]:
        """Completed checkpoint epochs, oldest first (partial writes ignored)."""
        return sorted({epoch for epoch, _ in self.backend.versions()})

    def save(self, state: TrainState) -> str:
        buf = io.BytesIO()
        # Any: numpy's stub for savez types **kwds so that an ndarray value reads as its
        # allow_pickle flag.
        flat: dict[str, Any] = {
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
        # A re-save of an epoch goes to a new version next to the old one, never over it:
        # the old one is deleted only once the new one is committed, so a kill at any
        # instant leaves at least the previous save loadable.
        version = 1 + max((v for e, v in self.backend.names() if e == state.epoch), default=-1)
        where = self.backend.write(state.epoch, version, data, json.dumps(meta).encode())
        committed = self.backend.versions()
        kept = sorted({e for e, _ in committed})[-self.keep :]
        for epoch, v in committed:
            if epoch not in kept or (epoch == state.epoch and v < version):
                self.backend.delete(epoch, v)
        for epoch, v in set(self.backend.names()) - set(committed):
            self.backend.delete(epoch, v)  # uploads a crash left without a commit marker
        return where

    def latest(self) -> TrainState | None:
        """The newest checkpoint that loads and verifies, or None."""
        for epoch, version in reversed(self.backend.versions()):
            try:
                return _decode(*self.backend.read(epoch, version))
            except Exception as e:  # corrupt or half-deleted: fall back to the one before
                log.warning(
                    "checkpoint epoch %d (version %d) is unreadable (%s); trying the one before",
                    epoch,
                    version,
                    e,
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


def _name(epoch: int, version: int = 0) -> str:
    """`epoch_0007` for the first save of epoch 7, `epoch_0007.v1`, ... for re-saves."""
    return f"{_PREFIX}{epoch:04d}" + (f".v{version}" if version else "")


def _parse(name: str) -> tuple[int, int] | None:
    """(epoch, version) of a checkpoint directory name, None for anything else."""
    if not name.startswith(_PREFIX):
        return None
    epoch, _, version = name[len(_PREFIX) :].partition(".v")
    if not epoch.isdigit() or (version and not version.isdigit()) or name.endswith(".v"):
        return None
    return int(epoch), int(version or 0)


class _Backend(Protocol):
    """Where one trial's checkpoints are kept: a directory or an object-store prefix."""

    def names(self) -> list[tuple[int, int]]:
        """Every (epoch, version) present, committed or not."""
        ...

    def versions(self) -> list[tuple[int, int]]:
        """Committed (epoch, version) pairs, oldest first."""
        ...

    def write(self, epoch: int, version: int, data: bytes, meta: bytes) -> str: ...
    def read(self, epoch: int, version: int) -> tuple[bytes, bytes]: ...
    def delete(self, epoch: int, version: int) -> None: ...
    def clear(self) -> None: ...


class _LocalBackend(_Backend):
    """A local or NFS directory: write to a temp dir, fsync, rename to a new name.

    The rename never replaces anything (the name is new), so each checkpoint directory
    is either complete or absent; deletion renames to a hidden name first, so a kill
    mid-delete leaves no half-deleted checkpoint under a visible name.
    """

    def __init__(self, path: Path) -> None:
        self.dir = path

    def names(self) -> list[tuple[int, int]]:
        if not self.dir.is_dir():
            return []
        return sorted(ev for p in self.dir.iterdir() if (ev := _parse(p.name)) is not None)

    def versions(self) -> list[tuple[int, int]]:
        return self.names()

    def write(self, epoch: int, version: int, data: bytes, meta: bytes) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.dir / _name(epoch, version)
        tmp = self.dir / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for name, blob in (("state.npz", data), ("meta.json", meta)):
                with open(tmp / name, "wb") as f:
                    f.write(blob)
                    f.flush()
                    os.fsync(f.fileno())
            _fsync_dir(tmp)
            os.rename(tmp, final)  # `final` is a new name: nothing is replaced
            _fsync_dir(self.dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for p in self.dir.glob(".tmp-*"):  # leftovers of a crash mid-write or mid-delete
            if p != tmp:
                shutil.rmtree(p, ignore_errors=True)
        return str(final)

    def read(self, epoch: int, version: int) -> tuple[bytes, bytes]:
        path = self.dir / _name(epoch, version)
        return (path / "state.npz").read_bytes(), (path / "meta.json").read_bytes()

    def delete(self, epoch: int, version: int) -> None:
        path = self.dir / _name(epoch, version)
        gone = self.dir / f".tmp-del-{path.name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, gone)
        except FileNotFoundError:
            return
        shutil.rmtree(gone, ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class _ObjectBackend(_Backend):
    """An object store through pyarrow.fs: arrays first, meta.json last (commit marker).

    A re-save writes a new version directory, so no commit marker is ever deleted
    before its replacement exists.
    """

    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path = fs, path

    def _listing(self) -> list[tuple[int, int, str]]:
        from pyarrow.fs import FileSelector

        found = []
        for info in self.fs.get_file_info(FileSelector(self.path, allow_not_found=True)):
            if (ev := _parse(info.base_name)) is not None:
                found.append((*ev, info.base_name))
        return sorted(found)

    def names(self) -> list[tuple[int, int]]:
        return [(e, v) for e, v, _ in self._listing()]

    def versions(self) -> list[tuple[int, int]]:
        from pyarrow.fs import FileType

        return [
            (e, v)
            for e, v, name in self._listing()
            if self.fs.get_file_info(f"{self.path}/{name}/meta.json").type == FileType.File
        ]

    def write(self, epoch: int, version: int, data: bytes, meta: bytes) -> str:
        where = f"{self.path}/{_name(epoch, version)}"
        self.fs.create_dir(where, recursive=True)
        for name, blob in (("state.npz", data), ("meta.json", meta)):
            with self.fs.open_output_stream(f"{where}/{name}") as f:
                f.write(blob)
        return where

    def read(self, epoch: int, version: int) -> tuple[bytes, bytes]:
        where = f"{self.path}/{_name(epoch, version)}"
        blobs = []
        for name in ("state.npz", "meta.json"):
            with self.fs.open_input_stream(f"{where}/{name}") as f:
                blobs.append(f.readall())
        return blobs[0], blobs[1]

    def delete(self, epoch: int, version: int) -> None:
        from pyarrow.fs import FileType

        where = f"{self.path}/{_name(epoch, version)}"
        # The commit marker goes first: a kill mid-delete leaves an uncommitted leftover.
        if self.fs.get_file_info(f"{where}/meta.json").type != FileType.NotFound:
            self.fs.delete_file(f"{where}/meta.json")
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
