"""ORCH_DOWNLOAD=1: a missing dataset is fetched once into the Keras cache, from a real HTTP
server on the loopback here (a mirror URL), and checked like any user-provided archive."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.data import load_dataset
from orchestrator.data.cifar import CIFAR10
from orchestrator.errors import DatasetError
from tests.unit.test_datasets import tar_gz, write_cifar


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCH_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


def test_download_when_allowed(server, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url, root = server
    tar_gz(write_cifar(tmp_path / "src", CIFAR10), root / "c10.tar.gz")
    monkeypatch.setenv("ORCH_DATASET_URL_CIFAR10", f"{url}/c10.tar.gz")
    with pytest.raises(DatasetError, match="ORCH_DOWNLOAD=1"):  # not allowed: clear error
        load_dataset("cifar10")
    monkeypatch.setenv("ORCH_DOWNLOAD", "1")
    data = load_dataset("cifar10")
    assert len(data.train.x) == 150 and data.num_classes == 10
    cached = tmp_path / "keras" / "datasets" / "cifar-10-python.tar.gz"
    assert cached.is_file()
    (root / "c10.tar.gz").unlink()  # the second load needs no network
    assert len(load_dataset("cifar10").test.x) == 30


def test_failed_or_truncated_download(server, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url, root = server
    monkeypatch.setenv("ORCH_DOWNLOAD", "1")
    monkeypatch.setenv("ORCH_DATASET_URL_CIFAR10", f"{url}/missing.tar.gz")
    with pytest.raises(DatasetError, match=r"downloading .*missing\.tar\.gz failed"):
        load_dataset("cifar10")
    assert not list((tmp_path / "keras" / "datasets").glob("*"))  # no half file left
    whole = tar_gz(write_cifar(tmp_path / "src", CIFAR10), tmp_path / "whole.tar.gz")
    (root / "cut.tar.gz").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    monkeypatch.setenv("ORCH_DATASET_URL_CIFAR10", f"{url}/cut.tar.gz")
    with pytest.raises(DatasetError):  # a cut file is detected by the loader, never used
        load_dataset("cifar10")
