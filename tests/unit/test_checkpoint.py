"""Keyed checkpoints: atomic writes, pruning, fallback from a corrupt newest one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from orchestrator.training.checkpoint import CheckpointStore, TrainState


def state(epoch: int) -> TrainState:
    rng = np.random.default_rng(epoch)
    return TrainState(
        epoch,
        {"model": [rng.normal(size=(3, 4)), np.arange(5)], "optimizer": [np.array(epoch)]},
        {"train_time_s": 1.5 * epoch},
    )


def test_round_trip_and_keep(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "abc", keep=2)
    for e in (1, 2, 3):
        store.save(state(e))
    assert store.epochs() == [2, 3]
    got = store.latest()
    assert got is not None and got.epoch == 3 and got.meta == {"train_time_s": 4.5}
    for a, b in zip(got.arrays["model"], state(3).arrays["model"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_corrupt_newest_falls_back(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "abc", keep=3)
    store.save(state(1))
    newest = Path(store.save(state(2)))
    (newest / "state.npz").write_bytes(b"garbage")
    got = store.latest()
    assert got is not None and got.epoch == 1


def test_missing_meta_falls_back(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "abc", keep=3)
    store.save(state(1))
    (Path(store.save(state(2))) / "meta.json").unlink()
    assert store.latest().epoch == 1  # type: ignore[union-attr]


def test_empty_store(tmp_path: Path) -> None:
    assert CheckpointStore(tmp_path, "none").latest() is None


CRASHER = """
import os, sys, numpy as np
from orchestrator.training import checkpoint as c
from orchestrator.training.checkpoint import CheckpointStore, TrainState
store = CheckpointStore(sys.argv[1], "k")
store.save(TrainState(1, {"model": [np.ones(3)]}, {}))
def dying(src, dst):            # the process dies after writing epoch 2, before the commit
    os.kill(os.getpid(), 9)
c.os.rename = dying
store.save(TrainState(2, {"model": [np.full(3, 2.0)]}, {}))
"""


def test_crash_mid_write_leaves_previous_intact(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", CRASHER, str(tmp_path)])
    assert proc.returncode == -signal.SIGKILL
    store = CheckpointStore(tmp_path, "k")
    assert store.epochs() == [1]  # the half-written epoch 2 is only a hidden temp dir
    assert any(p.name.startswith(".tmp-") for p in store.dir.iterdir())
    got = store.latest()
    assert got is not None and got.epoch == 1
    np.testing.assert_array_equal(got.arrays["model"][0], np.ones(3))
    store.save(TrainState(2, {"model": [np.zeros(3)]}, {}))  # the next save cleans up
    assert not any(p.name.startswith(".tmp-") for p in store.dir.iterdir())


@pytest.mark.skipif(os.name != "posix", reason="rename atomicity is POSIX")
def test_resave_same_epoch_replaces(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "k")
    store.save(state(1))
    store.save(TrainState(1, {"model": [np.zeros(2)]}, {}))
    np.testing.assert_array_equal(store.latest().arrays["model"][0], np.zeros(2))  # type: ignore[union-attr]


def test_object_store_backend(tmp_path: Path) -> None:
    """The same store on an object store through pyarrow.fs (its in-memory mock here):
    meta.json is the commit marker, so an epoch without it does not exist."""
    uri = f"mock:///bucket/{tmp_path.name}"
    store = CheckpointStore(uri, "abc", keep=2)
    for e in (1, 2, 3):
        store.save(state(e))
    assert store.epochs() == [2, 3]
    got = store.latest()
    assert got is not None and got.epoch == 3
    np.testing.assert_array_equal(got.arrays["model"][0], state(3).arrays["model"][0])
    # an interrupted upload of epoch 4: arrays written, no commit marker
    from orchestrator.training.checkpoint import object_store

    fs, root = object_store(uri)
    fs.create_dir(f"{root}/checkpoints/abc/epoch_0004")
    with fs.open_output_stream(f"{root}/checkpoints/abc/epoch_0004/state.npz") as f:
        f.write(b"partial")
    assert store.epochs() == [2, 3] and store.latest().epoch == 3  # type: ignore[union-attr]
    # a corrupt newest falls back
    with fs.open_output_stream(f"{root}/checkpoints/abc/epoch_0003/state.npz") as f:
        f.write(b"garbage")
    assert store.latest().epoch == 2  # type: ignore[union-attr]
    store.clear()
    assert store.epochs() == [] and store.latest() is None


@pytest.mark.parametrize("where", ["local", "object"])
def test_control_stop_requests(tmp_path: Path, where: str) -> None:
    from orchestrator.scheduling.control import Control

    storage = str(tmp_path) if where == "local" else f"mock:///ctl/{tmp_path.name}"
    c = Control(storage)
    assert c.stop_request("k") is None
    c.request_stop("k", failure_class="cancelled", reason="by me")
    assert Control(storage).stop_request("k") == {"failure_class": "cancelled", "reason": "by me"}
    c.clear("k")
    assert c.stop_request("k") is None
    c.clear("k")  # idempotent
