"""Datasets are fetched on first use, as keras.datasets does, from a real HTTP server on the
loopback here (a mirror URL): checked against the published checksum, written atomically,
never fetched again; ORCH_OFFLINE=1 (or `offline = true` in the config) forbids the
network and says which file to put where."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from orchestrator.data import load_dataset, registry
from orchestrator.data.cifar import CIFAR10
from orchestrator.data.registry import dataset_files
from orchestrator.errors import DatasetError
from tests.unit.test_datasets import tar_gz, write_cifar


class _Server:
    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url, self.requests = root, url, []


@pytest.fixture
def server(tmp_path: Path) -> Iterator[_Server]:
    root = tmp_path / "www"
    root.mkdir()
    holder: list[_Server] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            holder[0].requests.append(self.path)

    handler = functools.partial(Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    holder.append(_Server(root, f"http://127.0.0.1:{httpd.server_address[1]}"))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    httpd.shutdown()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCH_DATA_DIR", raising=False)
    monkeypatch.delenv("ORCH_DOWNLOAD", raising=False)
    monkeypatch.setenv("ORCH_OFFLINE", "0")  # conftest sets 1 for every other test
    monkeypatch.setenv("ORCH_HOME", str(tmp_path / ".orch"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _serve_cifar(server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small CIFAR-10 archive on the server; its md5 stands in for the published one."""
    archive = tar_gz(write_cifar(tmp_path / "src", CIFAR10), server.root / "c10.tar.gz")
    monkeypatch.setenv("ORCH_DATASET_URL_CIFAR10", f"{server.url}/c10.tar.gz")
    monkeypatch.setitem(registry.CHECKSUMS, CIFAR10.archive, _md5(archive))
    return archive


def test_fetched_on_first_use_checked_and_cached(server, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _serve_cifar(server, tmp_path, monkeypatch)
    data = load_dataset("cifar10")
    assert len(data.train.x) == 150 and data.num_classes == 10
    cached = tmp_path / "keras" / "datasets" / "cifar-10-python.tar.gz"
    assert cached.is_file() and data.files == (str(cached),)
    assert not list(cached.parent.glob("*.part"))  # written under a temporary name
    assert server.requests == ["/c10.tar.gz"]
    (server.root / "c10.tar.gz").unlink()  # the second load needs no network
    assert len(load_dataset("cifar10").test.x) == 30
    assert server.requests == ["/c10.tar.gz"]


def test_the_official_checksums_are_pinned() -> None:
    # As published on https://www.cs.toronto.edu/~kriz/cifar.html (and pinned by torchvision).
    assert registry.CHECKSUMS["cifar-10-python.tar.gz"] == "c58f30108f718f92721af3b95e74349a"
    assert registry.CHECKSUMS["cifar-100-python.tar.gz"] == "eb9058c3a382ffc7106e4002c42a8d85"
    assert registry.CHECKSUMS["extra_32x32.mat"] == "a93ce644f1a588dc4d68dda5feec44a7"


def test_a_file_with_another_checksum_is_refused(server, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _serve_cifar(server, tmp_path, monkeypatch)
    monkeypatch.setitem(registry.CHECKSUMS, CIFAR10.archive, "0" * 32)
    with pytest.raises(DatasetError, match=r"md5 [0-9a-f]{32} is not the published 0{32}"):
        load_dataset("cifar10")
    assert not list((tmp_path / "keras" / "datasets").iterdir())  # nothing kept


def test_failed_or_truncated_download_leaves_nothing(server, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    whole = _serve_cifar(server, tmp_path, monkeypatch)
    monkeypatch.setenv("ORCH_DATASET_URL_CIFAR10", f"{server.url}/missing.tar.gz")
    with pytest.raises(DatasetError, match=r"downloading .*missing\.tar\.gz failed"):
        load_dataset("cifar10")
    assert not list((tmp_path / "keras" / "datasets").glob("*"))  # no half file left
    (server.root / "cut.tar.gz").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    monkeypatch.setenv("ORCH_DATASET_URL_CIFAR10", f"{server.url}/cut.tar.gz")
    with pytest.raises(DatasetError, match="not the published"):  # a cut file never lands
        load_dataset("cifar10")
    assert not list((tmp_path / "keras" / "datasets").glob("*"))


@pytest.mark.parametrize("how", ["env", "config"])
def test_offline_never_touches_the_network(server, tmp_path, monkeypatch, how) -> None:  # type: ignore[no-untyped-def]
    _serve_cifar(server, tmp_path, monkeypatch)
    if how == "env":
        monkeypatch.setenv("ORCH_OFFLINE", "1")
    else:
        monkeypatch.delenv("ORCH_OFFLINE")
        (tmp_path / ".orch").mkdir()
        (tmp_path / ".orch" / "config.toml").write_text("offline = true\n")
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10")
    msg = str(err.value)
    assert "orch is offline" in msg and "cifar-10-python.tar.gz" in msg  # the file
    assert str(tmp_path / "keras" / "datasets") in msg and "ORCH_DATA_DIR" in msg  # where
    assert server.requests == []


def _serve_svhn(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small SVHN files (20 train, 10 test, 30 extra) in a mirror folder for both names."""
    rng = np.random.default_rng(0)
    for name, n in (("train_32x32.mat", 20), ("test_32x32.mat", 10), ("extra_32x32.mat", 30)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        scipy.io.savemat(server.root / name, {"X": x, "y": rng.integers(1, 11, (n, 1))})
        monkeypatch.setitem(registry.CHECKSUMS, name, _md5(server.root / name))
    monkeypatch.setenv("ORCH_DATASET_URL_SVHN", f"{server.url}/")
    monkeypatch.setenv("ORCH_DATASET_URL_SVHN_EXTRA", f"{server.url}/")


def test_svhn_from_a_mirror_folder(server, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _serve_svhn(server, monkeypatch)
    data = load_dataset("svhn_extra")
    assert (len(data.train.x), len(data.test.x)) == (50, 10)
    assert sorted(Path(f).name for f in data.files) == sorted(registry.svhn.MD5)
    assert dataset_files("svhn_extra") == [Path(f) for f in data.files]


def test_svhn_extra_fetches_the_extra_file_beside_an_earlier_svhn(
    server, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """An svhn run leaves train and test in the cache; svhn_extra then needs only extra."""
    _serve_svhn(server, monkeypatch)
    assert len(load_dataset("svhn").train.x) == 20
    assert sorted(server.requests) == ["/test_32x32.mat", "/train_32x32.mat"]
    data = load_dataset("svhn_extra")
    assert (len(data.train.x), len(data.test.x)) == (50, 10)
    assert sorted(server.requests) == ["/extra_32x32.mat", "/test_32x32.mat", "/train_32x32.mat"]


def test_svhn_fetches_a_missing_test_file(server, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _serve_svhn(server, monkeypatch)
    cache = tmp_path / "keras" / "datasets"
    cache.mkdir(parents=True)
    (cache / "train_32x32.mat").write_bytes((server.root / "train_32x32.mat").read_bytes())
    assert len(load_dataset("svhn").test.x) == 10
    assert server.requests == ["/test_32x32.mat"]


def test_offline_names_the_file_missing_beside_the_others(server, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A user's folder with train and test but no extra: offline, the error says which file
    is missing beside which, and nothing is fetched."""
    _serve_svhn(server, monkeypatch)
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("train_32x32.mat", "test_32x32.mat"):
        (folder / name).write_bytes((server.root / name).read_bytes())
    assert len(load_dataset("svhn", data_dir=folder).train.x) == 20
    monkeypatch.setenv("ORCH_OFFLINE", "1")
    with pytest.raises(DatasetError) as err:
        load_dataset("svhn_extra", data_dir=folder)
    assert f"{folder / 'train_32x32.mat'} (data_dir; extra_32x32.mat not beside it)" in str(
        err.value
    )
    assert server.requests == []
