"""`orch ui`: a real MLflow server on the workspace's store (SQLite, and PostgreSQL as on a
cluster) answers its health check and lists the experiments orch wrote."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ORCH, ROOT, run_orch

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode()


@pytest.fixture(params=["sqlite", "postgresql"])
def tracking_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / '.orch' / 'mlflow.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_ui_serves_the_workspace_store(tmp_path: Path, tracking_uri: str) -> None:
    from orchestrator.tracking.mlflow_store import MlflowStore

    home = tmp_path / ".orch"
    store = MlflowStore(tracking_uri, str(home / "artifacts"))
    store.experiment_id("ui-probe-job")  # what `orch submit` creates first
    port = _free_port()
    env = {
        **os.environ,
        "ORCH_HOME": str(home),
        "ORCH_TRACKING_URI": tracking_uri,
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "ui.log").open("w")
    proc = subprocess.Popen(
        [ORCH, "ui", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the server and its workers
    )
    try:
        deadline, health = time.monotonic() + 180, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = _get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                time.sleep(1)
        assert health == (200, "OK"), (tmp_path / "ui.log").read_text()[-3000:]
        status, body = _get(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=100"
        )
        names = {e["name"] for e in json.loads(body)["experiments"]}
        assert status == 200 and "ui-probe-job" in names
    finally:
        _stop(proc)
        log.close()
    assert f"on http://127.0.0.1:{port}" in (tmp_path / "ui.log").read_text()


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the server's process group; then SIGKILL to whatever is left of it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_ui_dry_run_prints_the_server_command(tmp_path: Path) -> None:
    uri = "postgresql+psycopg2://orch:secret@db.example:5432/mlflow"
    out = run_orch(
        "ui",
        "--dry-run",
        "--host",
        "0.0.0.0",
        "--port",
        "5055",
        env={"ORCH_HOME": str(tmp_path / ".orch"), "ORCH_TRACKING_URI": uri},
    )
    assert out.returncode == 0, out.stderr
    argv = shlex.split(out.stdout.strip())
    assert argv[1:4] == ["-m", "mlflow", "server"]
    opts = dict(zip(argv[4::2], argv[5::2], strict=True))
    assert opts == {
        "--backend-store-uri": uri,
        "--default-artifact-root": str(tmp_path / ".orch" / "artifacts"),
        "--host": "0.0.0.0",
        "--port": "5055",
        "--workers": "1",
    }
