"""Under CI=true a missing PostgreSQL server or Chromium fails the tests that need it;
on a developer's machine they are skipped (issue 11 §6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

NEEDS_MISSING_SERVICES = """
from tests.conftest import pg_databases, unavailable

def test_postgres():
    with pg_databases("x", admin_dsn="host=127.0.0.1 port=1 dbname=test user=postgres"):
        pass

def test_browser():
    unavailable("no chromium on PATH: apt-get install -y chromium")
"""


@pytest.mark.parametrize(("ci", "outcome"), [("true", "2 failed"), ("", "2 skipped")])
def test_missing_service(tmp_path: Path, ci: str, outcome: str) -> None:
    test = tmp_path / "test_needs.py"
    test.write_text(NEEDS_MISSING_SERVICES)
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outcome in done.stdout, done.stdout
    if ci:
        assert "CI=true: this service is required" in done.stdout
