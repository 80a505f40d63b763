"""orch's Prometheus metrics, end to end: a real local Ray with a metrics export port, a
MetricsSink fed the events of a small job (one trial finishes, one retries after an OOM and
then fails for good), and the series scraped over HTTP as Prometheus would."""

from __future__ import annotations

import dataclasses
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.protocol import EpochReport
from orchestrator.tracking.metrics import METRICS, MetricsSink, exported_name

pytestmark = pytest.mark.integration

JOB = """
[job]
name = "metrics-job"

[defaults]
dataset = "digits"
data = { train_size = 200, test_size = 100 }
epochs = 3
batch_size = 32

[[trial]]
name = "LeNet-A"
model = "lenet5"

[[trial]]
name = "LeNet-B"
model = "lenet5"
seed = 1
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def metrics_port() -> Iterator[int]:
    import ray

    port = _free_port()
    # Metrics reach the agent every metrics_report_interval_ms (Ray's default 10 s, its
    # floor 1 s): at the floor, each wait for an exported value below takes ~1 s, not ~10.
    ray.init(
        address="local",
        num_cpus=1,
        include_dashboard=False,
        _metrics_export_port=port,
        _system_config={"metrics_report_interval_ms": 1000},
    )
    try:
        node = ray._private.worker.global_worker.node
        assert node.metrics_export_port == port
        yield port
    finally:
        ray.shutdown()


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    drop = {"Component", "NodeAddress", "SessionName", "Version", "WorkerId"}
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = frozenset(
                (k, v) for k, v in s.labels.items() if k not in drop and not k.startswith("otel_")
            )
            out[(s.name, labels)] = s.value
    return out


def _wait_for(port: int, expected: dict[tuple[str, frozenset], float], timeout_s: float = 60):
    """Ray's agent exports asynchronously: poll until every expected sample has its value."""
    deadline, got = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline:
        got = _scrape(port)
        if all(got.get(k) == pytest.approx(v) for k, v in expected.items()):
            return got
        time.sleep(1)
    missing = {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) != pytest.approx(v)}
    raise AssertionError(f"not exported within {timeout_s} s (expected, got): {missing}")


def L(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def _epoch(epoch: int, seconds: float, gpu: str) -> EpochReport:
    return EpochReport(
        epoch=epoch, epochs_done=epoch + 1, loss=1.0, accuracy=0.5,
        val_accuracy=0.4 + 0.1 * epoch, epoch_time_s=seconds,
        images_per_s=100.0, gpu_name=gpu, gpu_count=1,
    )  # fmt: skip


def test_sink_without_ray_only_keeps_state(tmp_path: Path) -> None:
    """Constructed and fed before ray.init (or with Ray shut down): no error, state kept."""
    import ray

    from orchestrator.spec.load import load_job

    path = tmp_path / "metrics.toml"
    path.write_text(JOB.replace("metrics-job", "metrics-offline"))
    job = load_job(path)
    assert not ray.is_initialized()  # runs before the module's Ray fixture starts one
    sink = MetricsSink(job, finished=[job.trials[0].key])
    sink.trial_started(job.trials[1].key)
    sink.trial_result(job.trials[1].key, _epoch(0, 3.0, "CPU"))
    assert sink.state == {job.trials[0].key: "FINISHED", job.trials[1].key: "RUNNING"}
    assert sink.job_eta_s() == pytest.approx(6.0)


def test_sink_events_are_scraped_as_prometheus_series(metrics_port: int, tmp_path: Path) -> None:
    import ray

    from orchestrator.spec.load import load_job

    path = tmp_path / "metrics.toml"
    path.write_text(JOB)
    job = load_job(path)
    a, b = job.trials
    sink = MetricsSink(job)
    j = job.name

    sink.trial_started(a.key)
    sink.trial_started(b.key)
    sink.trial_result(a.key, _epoch(0, 2.0, "NVIDIA GeForce GTX 1080 Ti"))
    sink.trial_result(b.key, _epoch(0, 4.0, "CPU"))
    # Mid-run: both running, A needs 2 more epochs at 2 s, B 2 more at 4 s; two in parallel.
    assert sink.job_eta_s() == pytest.approx((2 * 2.0 + 2 * 4.0) / 2)
    _wait_for(metrics_port, {
        ("ray_orch_trials", L(job=j, state="RUNNING")): 2,
        ("ray_orch_trial_eta_seconds", L(job=j, trial="LeNet-B", model="lenet5")): 8.0,
        ("ray_orch_job_eta_seconds", L(job=j)): 6.0,
    })  # fmt: skip

    sink.trial_failed(b.key, "ResourceExhaustedError: OOM when allocating", will_retry=True)
    sink.trial_result(a.key, _epoch(1, 2.0, "NVIDIA GeForce GTX 1080 Ti"))
    last = dataclasses.replace(_epoch(2, 2.0, "NVIDIA GeForce GTX 1080 Ti"), test_accuracy=0.7)
    sink.trial_result(a.key, last)
    sink.trial_completed(a.key, last)
    sink.trial_started(b.key)
    sink.trial_failed(b.key, "node died", will_retry=False, failure_class="node_lost")

    trial_a = L(job=j, trial="LeNet-A", model="lenet5")
    gtx = L(job=j, model="lenet5", gpu_type="gtx-1080-ti")
    got = _wait_for(metrics_port, {
        ("ray_orch_trials", L(job=j, state="FINISHED")): 1,
        ("ray_orch_trials", L(job=j, state="FAILED")): 1,
        ("ray_orch_trials", L(job=j, state="RUNNING")): 0,
        ("ray_orch_trials", L(job=j, state="RETRYING")): 0,
        ("ray_orch_trials", L(job=j, state="PENDING")): 0,
        ("ray_orch_trial_epochs_done", trial_a): 3,
        ("ray_orch_trial_epochs_planned", trial_a): 3,
        ("ray_orch_trial_epochs_per_second", trial_a): 0.5,
        ("ray_orch_trial_images_per_second", trial_a): 100.0,
        ("ray_orch_trial_val_accuracy", trial_a): 0.6,
        ("ray_orch_trial_eta_seconds", trial_a): 0.0,
        ("ray_orch_job_eta_seconds", L(job=j)): 0.0,
        ("ray_orch_epochs_total", gtx): 3,
        ("ray_orch_epochs_total", L(job=j, model="lenet5", gpu_type="cpu")): 1,
        ("ray_orch_images_total", gtx): 3 * 100.0 * 2.0,
        ("ray_orch_trial_failures_total", L(job=j, model="lenet5", failure_class="oom")): 1,
        ("ray_orch_trial_failures_total",
         L(job=j, model="lenet5", failure_class="node_lost")): 1,
    })  # fmt: skip

    # Every metric orch defines is exported, under the name the dashboard queries.
    names = {name for name, _ in got}
    assert {exported_name(m) for m in METRICS} <= names
    # ... beside Ray's own series, which the dashboard shows next to orch's.
    ray.get(ray.remote(lambda: 1).remote())
    assert {"ray_node_cpu_utilization", "ray_resources"} <= names

    sink.set_eta(1234.0)  # the planner's estimate wins over the sink's own
    _wait_for(metrics_port, {("ray_orch_job_eta_seconds", L(job=j)): 1234.0})
