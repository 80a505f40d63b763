"""Per-trial checkpoints keyed by the trial's content key, written atomically.

Layout: ``{storage}/checkpoints/{trial_key}/epoch_0007/{state.npz, meta.json}``. A
resubmitted or retried trial finds its own newest checkpoint here, whatever Tune's
experiment snapshot says (DESIGN.md: Tune may restart trials from scratch after a driver
crash).

Atomicity: everything is written into a hidden temporary directory, fsynced, then renamed
into place in one step, so a crash mid-write leaves the previous checkpoint intact. The
meta file carries a SHA-256 of the arrays; a newest checkpoint that fails to load or to
verify is skipped in favour of the one before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
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


class CheckpointStore:
    def __init__(self, storage: str | os.PathLike[str], trial_key: str, keep: int = 2) -> None:
        self.dir = Path(storage) / "checkpoints" / trial_key
        self.keep = max(1, keep)

    def epochs(self) -> list[int]:
        """Completed checkpoint epochs, oldest first (temporary directories ignored)."""
        if not self.dir.is_dir():
            return []
        found = []
        for p in self.dir.iterdir():
            if p.name.startswith(_PREFIX) and p.name[len(_PREFIX) :].isdigit():
                found.append(int(p.name[len(_PREFIX) :]))
        return sorted(found)

    def save(self, state: TrainState) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.dir / f"{_PREFIX}{state.epoch:04d}"
        tmp = self.dir / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            flat = {
                f"{group}/{i:05d}": arr
                for group, arrs in state.arrays.items()
                for i, arr in enumerate(arrs)
            }
            npz = tmp / "state.npz"
            with open(npz, "wb") as f:
                np.savez(f, **flat)
                f.flush()
                os.fsync(f.fileno())
            meta = {
                **state.meta,
                "epoch": state.epoch,
                "sha256": _sha256(npz),
                "groups": {g: len(a) for g, a in state.arrays.items()},
            }
            with open(tmp / "meta.json", "w") as f:
                json.dump(meta, f)
                f.flush()
                os.fsync(f.fileno())
            if final.exists():  # a rerun of the same epoch: replace it
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(self.dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._prune()
        return final

    def latest(self) -> TrainState | None:
        """The newest checkpoint that loads and verifies, or None."""
        for epoch in reversed(self.epochs()):
            path = self.dir / f"{_PREFIX}{epoch:04d}"
            try:
                return _load(path)
            except Exception as e:  # corrupt or half-deleted: fall back to the one before
                log.warning("checkpoint %s is unreadable (%s); trying the one before", path, e)
        return None

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _prune(self) -> None:
        for epoch in self.epochs()[: -self.keep]:
            shutil.rmtree(self.dir / f"{_PREFIX}{epoch:04d}", ignore_errors=True)
        for p in self.dir.glob(".tmp-*"):  # leftovers of a crash mid-write
            shutil.rmtree(p, ignore_errors=True)


def _load(path: Path) -> TrainState:
    meta = json.loads((path / "meta.json").read_text())
    npz = path / "state.npz"
    if _sha256(npz) != meta["sha256"]:
        raise ValueError("checksum mismatch")
    with np.load(npz) as data:
        arrays = {g: [data[f"{g}/{i:05d}"] for i in range(n)] for g, n in meta["groups"].items()}
    epoch = int(meta.pop("epoch"))
    meta.pop("sha256")
    meta.pop("groups")
    return TrainState(epoch=epoch, arrays=arrays, meta=meta)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
