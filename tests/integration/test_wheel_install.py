"""orch as a wheel, installed outside the checkout: the report's templates and `py.typed`
ship as package data, and `orch report` works from the installed package alone.

The wheel is built from this checkout and installed with `--no-deps` into a fresh
virtualenv whose only view of the heavy dependencies (TensorFlow, Ray, MLflow) is a path
entry to the test environment's site-packages. That entry does not run the editable
install's import hook, so `import orchestrator` can only find the wheel's copy; the test
checks that too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.test_table_mlflow import JOB, write_golden_job

pytestmark = pytest.mark.integration


def _run(*cmd: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert out.returncode == 0, f"{cmd}: {out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    # Built as pip builds it for a user: in an isolated environment with the build-system
    # requirements of pyproject.toml.
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, ROOT)
    (found,) = dist.glob("orch-*.whl")
    return found


def test_wheel_carries_templates_and_py_typed(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "orchestrator/py.typed" in names
    assert "orchestrator/report/templates/report.html.j2" in names
    assert "orchestrator/report/templates/report.css" in names
    assert not any(n.startswith("tests/") for n in names)


def test_installed_wheel_writes_a_report(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    vpy = venv / "bin" / "python"
    site = Path(
        _run(vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(vpy, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel)

    outside = tmp_path / "elsewhere"  # not the checkout: nothing to find by accident
    outside.mkdir()
    where = _run(vpy, "-c", "import orchestrator; print(orchestrator.__file__)", cwd=outside)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout

    home = outside / ".orch"
    home.mkdir()
    write_golden_job(f"sqlite:///{home / 'mlflow.db'}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["ORCH_HOME"] = str(home)
    _run(venv / "bin" / "orch", "report", JOB, cwd=outside, env=env)
    page = (home / "reports" / JOB / "index.html").read_text()
    assert "<table" in page and page.count('src="data:image/png;base64,') == 3
