"""The Makefile takes whichever supported Python (3.11 or 3.12) the machine has, and says
which versions work when it has none (issue 14 §4: Ubuntu 24.04 ships only python3.12)."""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="needs GNU make")


def interpreter(version: str, tmp: Path) -> str:
    """A real python<version> if this machine has one, else a stand-in that answers the
    Makefile's version question the way that interpreter would (make -n runs nothing else)."""
    candidates = [
        *sorted(glob.glob(f"/root/.pyenv/versions/{version}*/bin/python{version}")),
        f"/usr/bin/python{version}",
        f"/usr/local/bin/python{version}",
    ]
    for found in candidates:  # a real binary that runs on its own (not a pyenv shim)
        if Path(found).is_file():
            real = subprocess.run(
                [found, "--version"], capture_output=True, text=True, env={"PATH": "/nowhere"}
            )
            if real.returncode == 0 and f"Python {version}" in real.stdout:
                return found
    fake = tmp / f"fake-python{version}"
    fake.write_text(f"#!/bin/sh\necho {version}\n")
    fake.chmod(0o755)
    return str(fake)


def make(path: Path, *args: str, venv: Path) -> subprocess.CompletedProcess[str]:
    """make as run on a machine whose PATH holds only `path`."""
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "-C", str(ROOT), *args, f"VENV={venv}"],
        env={"PATH": str(path), "HOME": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("name", ["python3.12", "python3"])
def test_only_python312_on_path(tmp_path: Path, name: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / name).symlink_to(interpreter("3.12", tmp_path))
    for target in ("quickstart", "test"):
        out = make(bin_dir, "-n", target, venv=tmp_path / "venv")
        assert out.returncode == 0, out.stderr
        assert f"{name} -m venv {tmp_path / 'venv'}" in out.stdout
    assert (
        "orch submit jobs/quickstart.toml"
        in make(bin_dir, "-n", "quickstart", venv=tmp_path / "venv").stdout
    )


def test_python311_preferred_when_both(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for v in ("3.11", "3.12"):
        (bin_dir / f"python{v}").symlink_to(interpreter(v, tmp_path))
    out = make(bin_dir, "-n", "quickstart", venv=tmp_path / "venv")
    assert out.returncode == 0 and "python3.11 -m venv" in out.stdout


@pytest.mark.parametrize("version", ["3.10", "3.13"])
def test_no_supported_python_says_which_work(tmp_path: Path, version: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(interpreter(version, tmp_path))
    out = make(bin_dir, "install", venv=tmp_path / "venv")
    assert out.returncode == 2
    assert "orch needs Python 3.11 or 3.12" in out.stderr and "make PY=" in out.stderr
    assert not (tmp_path / "venv").exists()


def test_explicit_py_is_used(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    out = make(bin_dir, "-n", "install", "PY=/opt/py/bin/python3.12", venv=tmp_path / "venv")
    assert out.returncode == 0 and "/opt/py/bin/python3.12 -m venv" in out.stdout
