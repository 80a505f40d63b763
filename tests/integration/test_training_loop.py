"""The epoch loop on real Keras/TensorFlow: exact resume, divergence, multi-device, precision."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

JOB = """
[job]
name = "loop"
[[trial]]
name = "t"
model = "{model}"
dataset = "digits"
data = {{ train_size = 240, test_size = 80 }}
epochs = 4
batch_size = 32
seed = 3
model_args = {model_args}
[trial.recipe]
lr = {lr}
augment = "standard"
schedule = {{ kind = "step", boundaries = [2], values = [{lr}, 0.01] }}
precision = "{precision}"
"""


def job(
    tmp_path: Path,
    *,
    model: str = "lenet5",
    model_args: str = "{}",
    lr: float = 0.05,
    precision: str = "float32",
) -> Path:
    p = tmp_path / "job.toml"
    p.write_text(JOB.format(model=model, model_args=model_args, lr=lr, precision=precision))
    return p


def run(
    job_file: Path, storage: Path, stop_after: int | None = None, devices: int = 0
) -> tuple[list[dict], dict]:
    cmd = [
        sys.executable,
        str(ROOT / "tests/integration/trial_runner.py"),
        str(job_file),
        str(storage),
        str(stop_after) if stop_after else "-",
        str(devices),
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [json.loads(ln[7:]) for ln in proc.stdout.splitlines() if ln.startswith("REPORT ")]
    result = next(json.loads(ln[7:]) for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return reports, result


METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr")


@pytest.mark.parametrize("model, model_args", [("lenet5", "{}"), ("resnet", "{ depth = 8 }")])
def test_resume_is_exact(tmp_path: Path, model: str, model_args: str) -> None:
    """Stopped after epoch 2 and resumed in a new process, a trial reports for epochs 3-4
    the same metrics as an uninterrupted run (augmentation, shuffling, BN, momentum)."""
    f = job(tmp_path, model=model, model_args=model_args)
    full, _ = run(f, tmp_path / "a")
    first, r1 = run(f, tmp_path / "b", stop_after=2)
    rest, r2 = run(f, tmp_path / "b")
    assert (r1["epochs_done"], r2["resumed_from"], r2["epochs_done"]) == (2, 2, 4)
    assert [m["epoch"] for m in first + rest] == [0, 1, 2, 3]
    for a, b in zip(full, first + rest, strict=True):
        for k in METRICS:
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-5), (a["epoch"], k)
    assert rest[-1]["test_accuracy"] == pytest.approx(full[-1]["test_accuracy"], abs=1e-6)
    assert rest[-1]["train_time_s"] > rest[-1]["epoch_time_s"]  # compute time carried over


def test_divergence_ends_with_a_clear_status(tmp_path: Path) -> None:
    reports, result = run(job(tmp_path, lr=1e8), tmp_path / "s")
    assert result["diverged"] is True
    assert reports[-1]["diverged"] == 1
    assert reports[-1]["message"].startswith("diverged at epoch 0")


def test_mirrored_over_two_logical_cpu_devices(tmp_path: Path) -> None:
    reports, result = run(
        job(tmp_path, model="resnet", model_args="{ depth = 8 }"),
        tmp_path / "s",
        stop_after=2,
        devices=2,
    )
    assert result["epochs_done"] == 2 and reports[0]["replicas"] == 2
    assert all(math.isfinite(r["loss"]) for r in reports)


def test_mixed_bfloat16(tmp_path: Path) -> None:
    reports, result = run(job(tmp_path, precision="mixed_bfloat16"), tmp_path / "s", stop_after=1)
    assert result["epochs_done"] == 1 and reports[0]["precision"] == "mixed_bfloat16"


def test_orch_train_cli_resumes_with_xla(tmp_path: Path) -> None:
    """`orch train` runs one trial without Ray (here with XLA on), and a second call with
    the same settings resumes from the first one's checkpoint."""
    from tests.conftest import run_orch

    args = [
        "train",
        "lenet5",
        "--epochs",
        "2",
        "--train-size",
        "200",
        "--lr",
        "0.02",
        "--set",
        "recipe.xla=true",
        "--set",
        "data.test_size=100",
    ]
    env = {"ORCH_HOME": str(tmp_path / ".orch")}
    first = run_orch(*args, "--stop-after", "1", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]

    def epochs(out: str) -> list[str]:  # the epoch column of each epoch line
        return [w[0] for w in map(str.split, out.splitlines()) if w[:1] in (["1/2"], ["2/2"])]

    assert "from scratch" in first.stdout and epochs(first.stdout) == ["1/2"]
    second = run_orch(*args, env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming after epoch 1" in second.stdout
    assert epochs(second.stdout) == ["2/2"]
    assert "test acc" in second.stdout
    bad = run_orch("train", "lenet5", "--set", "recipe.lr=-1", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "recipe.lr: must be > 0" in bad.stderr


def test_timeout_stops_between_epochs_with_a_checkpoint(tmp_path: Path) -> None:
    f = job(tmp_path)
    text = f.read_text().replace('name = "t"', 'name = "t"\nresources = { timeout_s = 0.001 }')
    f.write_text(text)
    reports, result = run(f, tmp_path / "s")
    assert result["epochs_done"] == 1  # the first epoch completes, then the limit applies
    assert reports[-1]["stopped"] == 1 and reports[-1]["failure_class"] == "timeout"
    assert "exceeds resources.timeout_s=0.001" in reports[-1]["reason"]
