"""Under CI=true a missing PostgreSQL server or Chromium fails the tests that need it;
on a developer's machine they are skipped (issue 11 §6). And .ci/run itself: the steps it
runs, lint and both test steps at the same time, and the exit status it makes of theirs."""

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


# .ci/run with stand-ins for make, the venv's pytest and the services: what it runs, in
# which order, at the same time or not, and the exit status it makes of the steps'.
ARGS_IN_CI = "-p no:cacheprovider --timeout=1200 --durations=25"
FAKE_MAKE = """#!/bin/sh
echo "make $1" >> "$TRACE"
case "$1" in
  install-test) exit "${INSTALL_RC:-0}" ;;
  lint) exit "${LINT_RC:-0}" ;;
  test)
    touch "$TRACE.test-started"
    if [ -n "$MEET" ]; then  # the slow step must be running now
      i=0; while [ ! -e "$TRACE.slow-started" ]; do
        i=$((i + 1)); [ $i -gt 300 ] && { echo "slow step never started" >&2; exit 42; }
        sleep 0.1
      done
    fi
    exit "${TEST_RC:-0}" ;;
esac
exit 64
"""
FAKE_PYTEST = """#!/bin/sh
echo "pytest $*" >> "$TRACE"
touch "$TRACE.slow-started"
if [ -n "$MEET" ]; then  # the non-slow step must be running now
  i=0; while [ ! -e "$TRACE.test-started" ]; do
    i=$((i + 1)); [ $i -gt 300 ] && { echo "test step never started" >&2; exit 42; }
    sleep 0.1
  done
fi
exit "${SLOW_RC:-5}"
"""


def _ci_run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir, venv_bin = tmp_path / "bin", tmp_path / "venv" / "bin"
    for d in (bin_dir, venv_bin):
        d.mkdir(parents=True)
    for path, text in [
        (bin_dir / "make", FAKE_MAKE),
        (venv_bin / "pytest", FAKE_PYTEST),
        (bin_dir / "psql", "#!/bin/sh\nexit 0\n"),  # PostgreSQL answers: nothing to start
        (bin_dir / "chromium", "#!/bin/sh\nexit 0\n"),
        (bin_dir / "tmux", "#!/bin/sh\nexit 0\n"),
    ]:
        path.write_text(text)
        path.chmod(0o755)
    trace = tmp_path / "trace"
    trace.write_text("")
    full = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TRACE": str(trace),
        "VENV": str(tmp_path / "venv"),
        **env,
    }
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return done, trace.read_text().splitlines()


def test_ci_runs_lint_and_both_test_steps_at_once(tmp_path: Path) -> None:
    done, trace = _ci_run(tmp_path, MEET="1")  # each test step waits for the other
    assert done.returncode == 0, done.stdout + done.stderr
    assert trace[0] == "make install-test"  # alone, before any step
    assert sorted(trace[1:]) == sorted(
        ["make lint", "make test", f"pytest -m slow {ARGS_IN_CI}"]
    ), trace
    for step in ("install", "lint", "tests (not slow)"):
        assert f"ci: {step}: exit 0 after" in done.stdout, done.stdout
    assert "ci: tests (slow): exit 5 after" in done.stdout  # no test selected: no failure
    assert "ci: total" in done.stdout


@pytest.mark.parametrize(
    "rcs", [{"LINT_RC": "2"}, {"TEST_RC": "1"}, {"SLOW_RC": "1"}, {"SLOW_RC": "2"}]
)
def test_ci_fails_when_any_step_fails(tmp_path: Path, rcs: dict[str, str]) -> None:
    done, trace = _ci_run(tmp_path, **rcs)
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(trace) == 4, trace  # the other steps ran all the same
    (rc,) = rcs.values()
    assert f": exit {rc} after" in done.stdout


def test_ci_stops_when_the_install_fails(tmp_path: Path) -> None:
    done, trace = _ci_run(tmp_path, INSTALL_RC="2")
    assert done.returncode == 1 and trace == ["make install-test"], (trace, done.stdout)


def test_ci_serial_runs_one_step_after_another(tmp_path: Path) -> None:
    done, trace = _ci_run(tmp_path, ORCH_CI_SERIAL="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert trace == ["make install-test", "make lint", f"pytest -m slow {ARGS_IN_CI}", "make test"]
