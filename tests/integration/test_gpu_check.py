"""benchmarks/gpu_check.py runs end to end on the CPU (--cpu, tiny settings) and prints its
table: measured figures beside the cost model's. Its input-pipeline figure is measured with
the trial's CPUs (--cpus), not with every core of the machine."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def run_gpu_check(*args: str) -> str:
    """benchmarks/gpu_check.py on the CPU with tiny settings and `args`; its stdout."""
    script = str(ROOT / "benchmarks/gpu_check.py")
    cmd = [sys.executable, script, "--cpu", "--model", "lenet5",
           "--batch", "16", "--steps", "2", "--cpus", "1", *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def gpu_check() -> ModuleType:
    """benchmarks/gpu_check.py as a module (importing it imports no TensorFlow)."""
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks/gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("cpus", "intra", "inter"), [(1, 1, 1), (3, 3, 2)])
def test_pipeline_is_measured_with_the_trials_cpus(cpus: int, intra: int, inter: int) -> None:
    """The process that runs the tf.data pipeline has TensorFlow's pools sized for the
    trial's CPUs by orch's setup_tensorflow (intra-op = CPUs, inter-op = min(2, CPUs)), as
    a trial's has; the pool sizes are read back from TensorFlow in that process."""
    pipe = gpu_check().pipeline_rate(cpus, images=256, batch=64)
    assert (pipe["cpus"], pipe["intra_op"], pipe["inter_op"]) == (cpus, intra, inter), pipe
    assert pipe["rate"] > 0


@pytest.mark.slow
def test_gpu_check_runs_on_cpu() -> None:
    out = run_gpu_check("--xla", "off", "--images", "512")
    assert "| measurement | measured | cost model |" in out
    for row in ("lenet5 train, float32, XLA off", "lenet5 train, mixed_float16, XLA off",
                "input pipeline, standard aug", "pipeline / GPU float32 rate",
                "4 packed trials at gpus = 0.25, total", "packed trials, each"):  # fmt: skip
        assert f"| {row}" in out, out
    # the pipeline row says the CPUs it ran with, and TensorFlow's pools in that process
    pipeline = "| input pipeline, standard aug, the trial's 1 CPU (TF pools: 1 intra-op, 1 inter-op"
    assert pipeline in out, out
    peaks = next(line for line in out.splitlines() if line.startswith("| packed trials, each"))
    assert len(peaks.split("|")[2].split(",")) >= 4
