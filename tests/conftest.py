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
# orch fetches missing datasets by default; tests never reach the internet (the download
# tests serve files from a loopback server and clear this themselves).
os.environ.setdefault("ORCH_OFFLINE", "1")
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


PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


@pytest.fixture
def pg_url() -> object:
    """A fresh PostgreSQL database on the local server (dropped afterwards), as a
    SQLAlchemy URL; skips when no server runs on 127.0.0.1:5432."""
    import uuid

    try:
        import psycopg2

        admin = psycopg2.connect(PG_ADMIN)
    except Exception as e:  # no server, or no driver
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {e}")
    admin.autocommit = True
    name = f"orch_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
