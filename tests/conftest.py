"""Shared fixtures. Integration tests run real services: a local Ray, MLflow on SQLite or
PostgreSQL, TensorFlow on CPU. Nothing here is mocked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

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
    # A local ray.init() in this test process sets RAY_AUTH_MODE=token in os.environ; a user's
    # shell has no such thing, so the command does not inherit it (pass it in env to test it).
    return subprocess.run(
        [ORCH, *args],
        capture_output=True,
        text=True,
        env=_user_env(env),
        cwd=cwd or ROOT,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def popen_orch(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """`run_orch` in the background (its own process group: kill it by group), for a
    command that runs while the test acts on it (a submit to cancel, a second submit)."""
    return subprocess.Popen(
        [ORCH, *args],
        cwd=cwd or ROOT,
        env=_user_env(env),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _user_env(env: dict[str, str] | None) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    return {**inherited, "ORCH_DASHBOARD": "0", "COLUMNS": "200", **(env or {})}


PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose service this machine lacks; under CI=true fail it instead, since
    users rely on what it checks and CI (.ci/run) provides the service."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: this service is required, see .ci/run)", pytrace=False)
    pytest.skip(reason)


CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)


@pytest.fixture
def chromium_path() -> str:
    """The headless browser's path; skips without one (fails under CI=true)."""
    if CHROMIUM is None:
        unavailable("no chromium on PATH: apt-get install -y chromium")
    return CHROMIUM


@contextmanager
def pg_databases(*kinds: str, admin_dsn: str = PG_ADMIN) -> Iterator[list[str]]:
    """Fresh PostgreSQL databases (one per kind, dropped afterwards) as SQLAlchemy URLs.
    Skips when the server does not answer (fails under CI=true)."""
    import uuid

    try:
        import psycopg2

        admin = psycopg2.connect(admin_dsn)
    except Exception as e:  # no server, or no driver
        unavailable(f"PostgreSQL not reachable ({admin_dsn}): {e}")
    admin.autocommit = True
    dsn = dict(part.split("=", 1) for part in admin_dsn.split())
    tag = uuid.uuid4().hex[:10]
    names = [f"orch_test_{tag}" + (f"_{k}" if k else "") for k in kinds]
    with admin.cursor() as cur:
        for name in names:
            cur.execute(f"CREATE DATABASE {name}")
    try:
        yield [
            f"postgresql+psycopg2://{dsn['user']}@{dsn['host']}:{dsn['port']}/{n}" for n in names
        ]
    finally:
        with admin.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the local server (dropped afterwards), as a
    SQLAlchemy URL; skips when no server runs on 127.0.0.1:5432 (fails under CI=true)."""
    with pg_databases("") as (url,):
        yield url
