"""Addresses that do not answer, are not addresses, or refuse the token: one line, exit 2,
within 20 s (issue 15 §2, issue 11 §1). Through the real CLI, as a user types it."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from tests.conftest import ORCH, run_orch
from tests.integration.real_cluster import RealCluster

pytestmark = pytest.mark.integration
LIMIT_S = 20.0
JOB = """
[job]
name = "addr"
[defaults]
dataset = "digits"
epochs = 1
[[trial]]
name = "t"
model = "lenet5"
"""


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.5)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(5)
    for c in held:
        c.close()
    srv.close()


def _one_line(proc, started: float) -> str:  # type: ignore[no-untyped-def]
    took = time.monotonic() - started
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 2, out
    assert took <= LIMIT_S, f"{took:.1f} s: {out}"
    assert "Traceback" not in out and "gcs_client" not in out, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    return lines[0]


def _orch(tmp_path: Path, *args: str, **env: str) -> tuple[str, float]:
    (tmp_path / "addr.toml").write_text(JOB)
    base = {"ORCH_HOME": str(tmp_path / ".orch"), "HOME": str(tmp_path)}
    t0 = time.monotonic()
    proc = run_orch(*args, env={**base, **env}, cwd=tmp_path, timeout=120)
    return _one_line(proc, t0), t0


@pytest.mark.parametrize("command", [("submit", "addr.toml"), ("cluster", "check")])
def test_nothing_listening(tmp_path: Path, command: tuple[str, ...]) -> None:
    line, _ = _orch(tmp_path, *command, "--address", "127.0.0.1:1")
    assert "127.0.0.1:1" in line and "Connection refused" in line and "start-head.sh" in line


@pytest.mark.parametrize("command", [("submit", "addr.toml"), ("cluster", "check")])
def test_not_an_address(tmp_path: Path, command: tuple[str, ...]) -> None:
    line, _ = _orch(tmp_path, *command, "--address", "foo")
    assert "'foo': not a Ray address" in line and "HOST:PORT" in line


def test_env_address_is_named_as_such(tmp_path: Path) -> None:
    line, _ = _orch(tmp_path, "cluster", "check", ORCH_RAY_ADDRESS="nohost:")
    assert line.startswith("error: ORCH_RAY_ADDRESS 'nohost:'"), line


def test_unknown_host(tmp_path: Path) -> None:
    line, _ = _orch(tmp_path, "cluster", "check", "--address", "no-such-host.invalid:6379")
    assert "unknown host 'no-such-host.invalid'" in line


def test_port_that_accepts_but_never_answers(tmp_path: Path, silent_port: int) -> None:
    line, _ = _orch(tmp_path, "cluster", "check", "--address", f"127.0.0.1:{silent_port}")
    assert "accepts connections but no Ray GCS answers" in line
    line, _ = _orch(tmp_path, "submit", "addr.toml", "--address", f"http://127.0.0.1:{silent_port}")
    assert "sends no HTTP answer" in line and "dashboard port" in line
    # A refused Ray Jobs submit never reached the head: the ledger does not list it.
    db = tmp_path / ".orch" / "orch.db"
    assert not db.exists() or Ledger(f"sqlite:///{db}").job("addr") is None


# -- against the real cluster: its token ----------------------------------------------------
@pytest.mark.parametrize("command", [("submit", "addr.toml"), ("cluster", "check")])
@pytest.mark.parametrize("case", ["no token", "wrong token", "missing token file"])
def test_token_refused_or_missing(
    real_cluster: RealCluster, tmp_path: Path, case: str, command: tuple[str, ...]
) -> None:
    env: dict[str, str] = {}  # HOME is tmp_path: no ~/.ray/auth_token to fall back on
    if case == "wrong token":
        env["RAY_AUTH_TOKEN"] = "0" * 64
    elif case == "missing token file":
        env["RAY_AUTH_TOKEN_PATH"] = str(tmp_path / "nope")
    line, _ = _orch(tmp_path, *command, "--address", real_cluster.address, **env)
    assert real_cluster.address in line
    if case == "no token":
        assert "requires a token and orch has none" in line
    elif case == "wrong token":
        assert "refused the token from RAY_AUTH_TOKEN" in line
    else:
        assert "RAY_AUTH_TOKEN_PATH=" in line and "no token there" in line
    assert "RAY_AUTH_TOKEN_PATH" in line  # the fix
    if command[0] == "submit":  # refused before anything was recorded
        db = tmp_path / ".orch" / "orch.db"
        assert not db.exists() or Ledger(f"sqlite:///{db}").job("addr") is None


def test_ray_jobs_address_refuses_a_wrong_token(real_cluster: RealCluster, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{real_cluster.dashboard_port}"
    line, _ = _orch(tmp_path, "submit", "addr.toml", "--address", url, RAY_AUTH_TOKEN="0" * 64)
    assert url in line and "refused the token" in line


def test_env_address_with_the_token_works(real_cluster: RealCluster, tmp_path: Path) -> None:
    # ORCH_RAY_ADDRESS and a token at ~/.ray/auth_token: no RAY_AUTH_* variable at all
    real_cluster.heal()
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text(real_cluster.token_file.read_text())
    env = real_cluster.env(tmp_path / ".orch", HOME=str(tmp_path))
    env.pop("RAY_AUTH_TOKEN_PATH")
    env["ORCH_RAY_ADDRESS"] = real_cluster.address
    proc = subprocess.run(
        [ORCH, "cluster", "check"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Ray cluster at {real_cluster.address}: 3 node(s)" in proc.stdout
