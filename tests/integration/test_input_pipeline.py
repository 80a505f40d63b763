"""benchmarks/input_pipeline.py: the pipeline's images/s with the trial's CPUs (TensorFlow
set up as orch sets up a trial), per CPU core, and per GPU type of the cost model the
ratio pipeline / that GPU's predicted training rate and the cores it needs. No ratio is
taken against a training step on this CPU."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

import pytest

from orchestrator.scheduling.policy.gputypes import SPECS
from orchestrator.spec.cost import PIPELINE_PER_CORE
from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks/input_pipeline.py"


def input_pipeline() -> ModuleType:
    """The script as a module (importing it imports no TensorFlow)."""
    spec = importlib.util.spec_from_file_location("input_pipeline", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def number(cell: str) -> float:
    return float(cell.split("(")[0].replace(",", "").strip())


def test_gpu_demand_is_the_pipeline_with_the_trials_cpus_over_each_gpu_rate() -> None:
    """ratio = pipeline images/s with the trial's CPUs / the cost model's ResNet-20 images/s
    on the type; cores needed = that GPU rate / the pipeline's images/s per core."""
    from orchestrator.spec.cost import estimate
    from orchestrator.spec.load import parse_job

    demand = input_pipeline().gpu_demand(20_000.0, 4)
    assert [row[0] for row in demand] == list(SPECS)
    job = parse_job(
        {"trial": [{"name": "r20", "model": "resnet20", "dataset": "cifar10", "epochs": 1,
                    "batch_size": 128, "resources": {"gpus": 1, "cpus": 4}}]},
        "r20.toml",
    )  # fmt: skip
    for gpu_type, rate, ratio, cores in demand:
        e = estimate(job.trials[0], gpu_type)
        assert e is not None
        assert rate == pytest.approx(128 / e.step_s)
        assert ratio == pytest.approx(20_000 / rate)
        assert cores == pytest.approx(rate / 5_000)


@pytest.mark.integration
def test_script_measures_with_the_trials_cpus_and_rates_against_each_gpu() -> None:
    cmd = [sys.executable, str(SCRIPT), "--cpus", "1", "--images", "1024", "--repeats", "1",
           "--augment", "standard"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    # TensorFlow's pools, read back in the process that ran the pipeline: the trial's 1 CPU
    assert "the trial's 1 CPU (setup_tensorflow: intra-op 1, inter-op 1 threads)" in out, out
    assert "training step" not in out and "model step" not in out, out
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| GPU type")}  # fmt: skip
    measured, per_core, modelled = rows["pipeline, augment=standard"]
    pipe = number(measured)
    assert pipe > 0 and number(per_core) == pytest.approx(pipe, abs=1)  # 1 CPU: per core
    assert number(modelled) == PIPELINE_PER_CORE["standard"]
    for gpu_type in SPECS:
        rate, ratio, cores = (number(cell) for cell in rows[gpu_type])
        assert ratio == pytest.approx(pipe / rate, abs=0.01, rel=0.01), (gpu_type, out)
        assert cores == pytest.approx(rate / pipe, abs=0.1, rel=0.01), (gpu_type, out)


def test_more_cpus_than_cores_is_refused() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpus", "100000"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 2 and "this machine has" in proc.stderr, proc.stderr
