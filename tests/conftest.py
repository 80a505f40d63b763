"""Shared fixtures. Integration tests run real services: a local Ray, MLflow on SQLite or
PostgreSQL, TensorFlow on CPU. Nothing here is mocked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
ORCH = shutil.which("orch", path=str(Path(sys.executable).parent)) or "orch"


@pytest.fixture
def orch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private workspace: ledger, MLflow store, checkpoints under tmp_path/.orch."""
    home = tmp_path / ".orch"
    monkeypatch.setenv("ORCH_HOME", str(home))
    for var in ("ORCH_LEDGER_URL", "ORCH_TRACKING_URI", "ORCH_STORAGE", "ORCH_RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    return home


def run_orch(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run the real `orch` console script in a subprocess, as a user would."""
    full_env = {**os.environ, "ORCH_DASHBOARD": "0", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [ORCH, *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
