"""`orch submit --address http://HEAD:8265`: the driver runs on the cluster as a Ray Job;
`orch status`, `orch logs` and `orch cancel` follow it from here."""

from __future__ import annotations

import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from tests.conftest import run_orch

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def head() -> Iterator[str]:
    """A real Ray head with its dashboard (the Jobs API) on a free port."""
    yield from start_head()


@pytest.fixture
def head_on_a_machine_with_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The same head, without token auth, on a machine that holds a token (one that once
    ran a token cluster: ~/.ray/auth_token left behind); its processes, a Ray Job's driver
    among them, see it."""
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    yield from start_head()


@pytest.fixture
def head_without_agent() -> Iterator[str]:
    """A head whose dashboard agent cannot start: its port is held by another process (as
    by a second Ray head on the machine). The Jobs API answers, without an agent."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield from start_head(agent_port=held.getsockname()[1], wait_for_agent=False)


def start_head(agent_port: int | None = None, wait_for_agent: bool = True) -> Iterator[str]:
    """The head gets a temp dir and an agent port of its own, as on a machine of its own.
    Ray's job supervisor resolves the driver's RAY_ADDRESS from the "current cluster" file
    in the head's temp dir, which every cluster_utils.Cluster on the machine rewrites in
    /tmp/ray: with CI's two suites running at once, a job's driver was sent to another
    test's (token) cluster and failed. And a head's dashboard agent takes Ray's fixed port
    52365 unless told otherwise: a second cluster's agent cannot bind it, and its Jobs API
    answers "No available agent" for good."""
    import ray._private.utils
    from ray.cluster_utils import Cluster

    port = free_port()
    temp = tempfile.mkdtemp(prefix="orch-rj-", dir="/tmp")  # short: Ray's socket paths
    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 2,
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": port,
            "dashboard_agent_listen_port": agent_port or free_port(),
            "temp_dir": temp,
        },
    )
    ray._private.utils.write_ray_address(c.gcs_address, temp)
    url = f"http://127.0.0.1:{port}"
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + 60
    while wait_for_agent:  # the dashboard's job agent comes up after the head
        try:
            JobSubmissionClient(url).list_jobs()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    yield url
    c.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


JOB = """
[job]
name = "{name}"
[[trial]]
name = "LeNet-5"
model = "lenet5"
dataset = "digits"
data = {{ train_size = 300, test_size = 100 }}
epochs = {epochs}
batch_size = 32
recipe = {{ lr = 0.02, augment = "none" }}
"""


def wait_ledger(ledger: Ledger, job: str, cond, timeout: float = 300):  # type: ignore[no-untyped-def]
    from ray.job_submission import JobStatus, JobSubmissionClient

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = ledger.job(job)
        if view is not None and cond(view):
            return view
        if view is not None and view.ray_job_id:
            client = JobSubmissionClient(view.ray_address)
            if client.get_job_status(view.ray_job_id) == JobStatus.FAILED:
                raise AssertionError(client.get_job_logs(view.ray_job_id)[-3000:])
        time.sleep(1)
    raise AssertionError(f"job {job}: condition not met; last: {ledger.job(job)}")


def workspace_env(tmp_path: Path) -> dict[str, str]:
    """orch's stores in a workspace of the test's own."""
    orch = tmp_path / ".orch"
    return {
        "ORCH_HOME": str(orch),
        "ORCH_LEDGER_URL": f"sqlite:///{orch / 'orch.db'}",
        "ORCH_TRACKING_URI": f"sqlite:///{orch / 'mlflow.db'}",
        "ORCH_STORAGE": str(orch / "storage"),
    }


def test_submit_as_ray_job_then_status_logs_cancel(head: str, tmp_path: Path) -> None:
    env = workspace_env(tmp_path)
    (tmp_path / "quick.toml").write_text(JOB.format(name="remote", epochs=1))
    t0 = time.monotonic()
    sub = run_orch(
        "submit",
        "quick.toml",
        "--address",
        head,
        "--no-pip",
        "--python",
        sys.executable,
        env=env,
        cwd=tmp_path,
    )
    assert sub.returncode == 0, sub.stdout + sub.stderr
    assert time.monotonic() - t0 < 60  # returns at once, the job runs on the cluster
    assert "submitted as Ray job orch-remote-" in sub.stdout
    ledger = Ledger(env["ORCH_LEDGER_URL"])
    view = wait_ledger(ledger, "remote", lambda v: v.trials[0].state == "FINISHED")
    assert view.ray_job_id and view.ray_job_id.startswith("orch-remote-")

    status = run_orch("status", "remote", env=env, cwd=tmp_path)
    assert status.returncode == 0 and "FINISHED" in status.stdout
    assert f"Ray job {view.ray_job_id}" in status.stdout
    logs = run_orch("logs", "remote", env=env, cwd=tmp_path)
    assert logs.returncode == 0 and "job remote: 1 trials" in logs.stdout

    # A long job, cancelled while its trial runs.
    (tmp_path / "long.toml").write_text(JOB.format(name="long", epochs=200))
    assert (
        run_orch(
            "submit",
            "long.toml",
            "--address",
            head,
            "--no-pip",
            "--python",
            sys.executable,
            env=env,
            cwd=tmp_path,
        ).returncode
        == 0
    )
    wait_ledger(ledger, "long", lambda v: v.trials[0].epochs_done >= 1)
    cancel = run_orch("cancel", "long", env=env, cwd=tmp_path)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    view = wait_ledger(ledger, "long", lambda v: v.trials[0].state == "CANCELLED", 120)
    assert view.trials[0].epochs_done < 200


def test_ray_job_driver_follows_a_cluster_without_auth(
    head_on_a_machine_with_a_token: str, tmp_path: Path
) -> None:
    """Ray's "auto" turns token mode on whenever the machine has a token; against this
    cluster every trial actor was then cancelled before it started, and the job hung."""
    env = workspace_env(tmp_path)
    (tmp_path / "quick.toml").write_text(JOB.format(name="remote", epochs=1))
    sub = run_orch("submit", "quick.toml", "--address", head_on_a_machine_with_a_token,
                   "--no-pip", "--python", sys.executable, env=env, cwd=tmp_path)  # fmt: skip
    assert sub.returncode == 0, sub.stdout + sub.stderr
    view = wait_ledger(
        Ledger(env["ORCH_LEDGER_URL"]), "remote", lambda v: v.trials[0].state == "FINISHED", 240
    )
    assert view.trials[0].attempts == 1, view


def test_a_head_without_job_agent_is_one_line(
    head_without_agent: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray's Jobs API answers "No available agent" while the head's agent starts and for
    good when it cannot: orch waits a bounded time, then says so in one line (it printed
    "unexpected RuntimeError ... a bug in orch")."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.scheduling.adapters import rayjobs

    monkeypatch.setattr(rayjobs, "AGENT_WAIT_S", 3.0)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick.toml").write_text(JOB.format(name="remote", epochs=1))
    t0 = time.monotonic()
    with pytest.raises(OrchestratorError) as e:
        rayjobs.submit_driver(
            "remote", tmp_path / "quick.toml", head_without_agent, force=False, pip=False
        )
    assert 3 <= time.monotonic() - t0 < 60
    line = str(e.value)
    assert "\n" not in line
    assert f"--address {head_without_agent}: the head's Ray Jobs API has no job agent" in line
    assert "--dashboard-agent-listen-port" in line
