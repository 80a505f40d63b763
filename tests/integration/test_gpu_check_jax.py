"""benchmarks/gpu_check.py --backend jax runs end to end on the CPU: the path used on GPU
machines whose image has JAX but no TensorFlow (the H200 figures in benchmarks/RESULTS.md
came from it). Keras 3 runs there on JAX, so this runs in its own process."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import unavailable
from tests.integration.test_gpu_check import run_gpu_check

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_gpu_check_jax_backend_runs_on_cpu() -> None:
    if importlib.util.find_spec("jax") is None:
        unavailable("jax is not installed: pip install -e '.[test]'")
    out = run_gpu_check("--backend", "jax", "--images", "256")
    assert "Keras 3.15" in out and " on jax," in out, out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    # JAX always compiles with XLA; every precision it runs is measured, beside the model
    for precision in ("float32", "mixed_float16", "mixed_bfloat16"):
        row = rows[f"lenet5 train, {precision}, XLA on"]
        measured, predicted = (cell.strip() for cell in row.split("|")[2:4])
        assert measured.endswith("img/s") and float(measured.split()[0].replace(",", "")) > 0
        assert predicted.endswith("(XLA not modelled)"), row
    assert "no TensorFlow here" in rows["input pipeline (tf.data)"]
    peaks = rows["packed trials, each: process RSS peak (CPU), MB"].split("|")[2].split(",")
    assert len(peaks) == 4 and all(int(p.strip()) > 0 for p in peaks), peaks
