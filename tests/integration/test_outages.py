"""The tracker and the ledger going away mid-job (issue 11 §4), on real servers:

* a real `mlflow server` on a PostgreSQL backend, stopped for 60 s while trials train,
  then started again: trials keep training, `orch status` says what the driver waits
  for, and the job ends with every epoch in MLflow exactly once;
* the PostgreSQL server holding the ledger restarted mid-job (twice): the ledger
  reconnects, and the job ends with each trial FINISHED once, one attempt each.

Both use a throwaway PostgreSQL of their own (pg_instance.py), never the shared one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ORCH, run_orch
from tests.integration.pg_instance import PgInstance, free_port

pytestmark = pytest.mark.integration

JOB = """
[job]
name = "{name}"

[defaults]
dataset = "digits"
data = {{ train_size = 400, test_size = 100 }}
epochs = {epochs}
batch_size = 32
recipe = {{ lr = 0.05, augment = "none", preprocess = "meanstd" }}
resources = {{ cpus = 1 }}

[[trial]]
name = "LeNet-5"
model = "lenet5"

[[trial]]
name = "LeNet-5 b"
model = "lenet5"
seed = 1
"""


@pytest.fixture
def pg() -> Iterator[PgInstance]:
    instance = PgInstance()
    try:
        yield instance
    finally:
        instance.close()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "ORCH_HOME": str(tmp_path / ".orch"), "ORCH_DASHBOARD": "0"}
    env.update({"COLUMNS": "200", **extra})
    for var in ("ORCH_LEDGER_URL", "ORCH_TRACKING_URI", "ORCH_STORAGE", "ORCH_RAY_ADDRESS"):
        if var not in extra:
            env.pop(var, None)
    return env


def _submit(job: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ORCH, "submit", str(job)],
        cwd=job.parent,  # anything written relative to the working directory stays there
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait(what: str, ok: Callable[[], bool], proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ok():
                return
        except Exception:  # a server that is just coming up
            pass
        if proc.poll() is not None:
            pytest.fail(f"submit ended before {what}: {proc.stdout.read()[-4000:]}")  # type: ignore[union-attr]
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def _epochs_done(ledger_url: str, job: str) -> list[int]:
    from orchestrator.ledger import Ledger

    for _ in range(10):  # a SQLite reader racing the driver's WAL checkpoint: read again
        try:
            ledger = Ledger(ledger_url, create=False)
            try:
                view = ledger.job(job)
            finally:
                ledger.engine.dispose()
            return [t.epochs_done for t in view.trials] if view else []
        except Exception:
            time.sleep(0.5)
    raise AssertionError(f"cannot read the ledger at {ledger_url}")


def _finish(proc: subprocess.Popen[str], timeout: float = 900) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"submit did not finish: {out[-4000:]}")
    assert proc.returncode == 0, out[-6000:]
    return out


def _check_exactly_once(tracking: str, ledger_url: str, job: str, epochs: int) -> None:
    """One MLflow run per trial, FINISHED, every epoch's metrics once at step=epoch; the
    ledger agrees, with one attempt per trial."""
    from mlflow.tracking import MlflowClient

    from orchestrator.ledger import Ledger

    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name(job)
    runs = client.search_runs([exp.experiment_id])
    trials = [r for r in runs if r.data.tags.get("orch.role") == "trial"]
    keys = [r.data.tags["orch.trial_key"] for r in trials]
    assert len(keys) == len(set(keys)) == 2, keys
    for run in trials:
        assert run.info.status == "FINISHED", run.info
        assert run.data.tags["orch.state"] == "FINISHED"
        for metric in ("loss", "val_accuracy", "epoch_time_s"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
            assert sorted(steps) == list(range(epochs)), (metric, steps)
        assert len(client.get_metric_history(run.info.run_id, "test_accuracy")) == 1
    parent = next(r for r in runs if r.data.tags.get("orch.role") == "job")
    assert parent.info.status == "FINISHED"
    ledger = Ledger(ledger_url)
    view = ledger.job(job)
    assert view is not None and view.state == "FINISHED" and view.waiting_for is None
    for t in view.trials:
        assert (t.state, t.epochs_done, t.attempts) == ("FINISHED", epochs, 1), t
        assert len(ledger.attempts(job, t.key)) == 1


class MlflowServer:
    """`mlflow server` as a deployment runs it: PostgreSQL backend, served artifacts."""

    def __init__(self, backend: str, artifacts: Path, log: Path) -> None:
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.cmd = [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            backend,
            "--serve-artifacts",  # artifacts through the server, into `artifacts`
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        import urllib.request

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.5)
        raise RuntimeError(f"mlflow server did not answer: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Gone at once, as in a crash: SIGKILL to the server and its workers. (SIGTERM
        lets uvicorn drain keep-alive connections, i.e. serve the driver for a while.)"""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.mark.slow  # a 60 s outage inside a job that outlasts it
def test_mlflow_server_down_for_60s(pg: PgInstance, tmp_path: Path) -> None:
    server = MlflowServer(pg.create_database("mlflow"), tmp_path / "artifacts", tmp_path / "log")
    server.start()
    epochs = 60  # 0.3-3 s an epoch: trials train into (or through) the outage
    job = tmp_path / "outage.toml"
    job.write_text(JOB.format(name="outage", epochs=epochs))
    # The deployment's layout: ledger and MLflow's backend on the same PostgreSQL server.
    ledger_url = pg.create_database("ledger")
    env = _env(tmp_path, ORCH_TRACKING_URI=server.uri, ORCH_LEDGER_URL=ledger_url)
    proc = _submit(job, env)
    try:
        _wait("a first epoch", lambda: min(_epochs_done(ledger_url, "outage")) >= 1, proc, 600)
        server.stop()
        down_at = time.monotonic()
        before = sum(_epochs_done(ledger_url, "outage"))
        # While MLflow is away: the driver says what it waits for, trials keep training.
        _wait(
            "orch status to name the tracker",
            lambda: "driver waiting for MLflow at" in run_orch("status", "outage", env=env).stdout,
            proc,
            55,
        )
        status = run_orch("status", "outage", env=env).stdout
        assert server.uri in status and "buffered" in status, status
        time.sleep(max(0.0, 60 - (time.monotonic() - down_at)))
        during = sum(_epochs_done(ledger_url, "outage"))
        # Kept training (or finished), no trial failed; the driver waits to record it all.
        assert during >= min(before + 4, 2 * epochs), (before, during)
        assert proc.poll() is None, "the job ended while the tracker was away"
        server.start()
        out = _finish(proc)
        assert "FAILED" not in out
        _check_exactly_once(server.uri, ledger_url, "outage", epochs)
        assert "waiting for" not in run_orch("status", "outage", env=env).stdout
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        server.stop()


def test_ledger_postgres_restarted_mid_job(pg: PgInstance, tmp_path: Path) -> None:
    ledger_url = pg.create_database("ledger")
    epochs = 8
    job = tmp_path / "pgjob.toml"
    job.write_text(JOB.format(name="pgjob", epochs=epochs))
    env = _env(tmp_path, ORCH_LEDGER_URL=ledger_url)
    proc = _submit(job, env)
    try:
        _wait("a first epoch", lambda: max(_epochs_done(ledger_url, "pgjob")) >= 1, proc, 600)
        pg.restart()  # every pooled connection of the driver is now dead
        _wait("more epochs", lambda: max(_epochs_done(ledger_url, "pgjob")) >= 3, proc, 300)
        pg.stop()  # a longer outage: a few seconds with no server at all
        time.sleep(5)
        pg.start()
        out = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "FAILED" not in out
    tracking = f"sqlite:///{tmp_path / '.orch' / 'mlflow.db'}"
    _check_exactly_once(tracking, ledger_url, "pgjob", epochs)


def test_outbox_buffers_while_the_tracking_database_is_down(pg: PgInstance) -> None:
    """The outbox alone, on MLflow's own PostgreSQL store: writes made while the database
    is down return at once, are queued in order, and land exactly once when it is back."""
    from orchestrator.tracking.mlflow_store import MlflowStore
    from orchestrator.tracking.outbox import Outbox

    store = MlflowStore(pg.create_database("mlflow"))
    waits: list[str | None] = []
    box = Outbox(store, on_wait=waits.append, backoff_s=(0.2, 0.5, 1.0))
    run = store.client.create_run(store.experiment_id("buffered")).info.run_id
    box.log_epoch(run, 0, {"loss": 1.0, "accuracy": 0.5})
    assert box.pending == 0 and waits == []
    pg.stop()
    t0 = time.monotonic()
    for epoch in (1, 2, 3):
        box.log_epoch(run, epoch, {"loss": 1.0 / (epoch + 1), "accuracy": 0.5})
    box.log_metric(run, "lost_time_s", 2.5, step=1)
    box.set_tags(run, {"orch.state": "FINISHED"})
    box.end_run(run, "FINISHED")
    assert time.monotonic() - t0 < 20  # one failed try at most: nobody waits for the outage
    assert box.pending == 6
    assert waits and waits[-1] is not None and waits[-1].startswith("MLflow at postgresql")
    assert not box.flush(timeout_s=1)  # still down: nothing lost, nothing written
    pg.start()
    assert box.flush(timeout_s=120)
    assert waits[-1] is None and box.pending == 0
    client = store.client
    assert [m.step for m in client.get_metric_history(run, "loss")] == [0, 1, 2, 3]
    assert [(m.step, m.value) for m in client.get_metric_history(run, "lost_time_s")] == [(1, 2.5)]
    got = client.get_run(run)
    assert got.info.status == "FINISHED" and got.data.tags["orch.state"] == "FINISHED"


def test_status_and_live_display_say_what_the_driver_waits_for(tmp_path: Path) -> None:
    from orchestrator.cli.live import LiveDisplay
    from orchestrator.ledger import Ledger
    from orchestrator.spec.load import load_job

    path = tmp_path / "w.toml"
    path.write_text(JOB.format(name="w", epochs=2))
    job = load_job(str(path))
    ledger = Ledger(f"sqlite:///{tmp_path / '.orch' / 'orch.db'}")
    ledger.register_job(job)
    ledger.set_job_state("w", "RUNNING")
    what = "MLflow at http://tracker:5000 (unreachable since 10:00:00; 3 updates buffered)"
    ledger.set_waiting("w", what)
    out = run_orch("status", "w", env=_env(tmp_path)).stdout
    assert f"driver waiting for {what}" in out, out
    ledger.set_waiting("w", None)
    assert "waiting for" not in run_orch("status", "w", env=_env(tmp_path)).stdout

    display = LiveDisplay(job, skipped=set())
    display.driver_waiting(what)
    assert f"waiting for {what}; trials keep training" in str(display._render().caption)
    display.driver_waiting(None)
    assert "waiting for" not in str(display._render().caption)
