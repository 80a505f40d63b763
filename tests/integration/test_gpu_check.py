"""benchmarks/gpu_check.py runs end to end on the CPU (--cpu, tiny settings) and prints its
table: measured figures beside the cost model's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_gpu_check(*args: str) -> str:
    """benchmarks/gpu_check.py on the CPU with tiny settings and `args`; its stdout."""
    script = str(ROOT / "benchmarks/gpu_check.py")
    cmd = [sys.executable, script, "--cpu", "--model", "lenet5",
           "--batch", "16", "--steps", "2", "--cpus", "1", *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_gpu_check_runs_on_cpu() -> None:
    out = run_gpu_check("--xla", "off", "--images", "512")
    assert "| measurement | measured | cost model |" in out
    for row in ("lenet5 train, float32, XLA off", "lenet5 train, mixed_float16, XLA off",
                "input pipeline, standard aug", "pipeline / GPU float32 rate",
                "4 packed trials at gpus = 0.25, total", "packed trials, each"):  # fmt: skip
        assert f"| {row}" in out, out
    peaks = next(line for line in out.splitlines() if line.startswith("| packed trials, each"))
    assert len(peaks.split("|")[2].split(",")) >= 4
