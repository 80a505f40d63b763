"""`orch plan` through the real CLI in a subprocess, against a real SQLite ledger and real
checkpoint directories written by CheckpointStore: one row per trial with its state
(finished / epoch k of N, resumable / new), a total line, and no TensorFlow or Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from orchestrator.config import workspace
from orchestrator.ledger import Ledger
from orchestrator.spec.load import load_job
from orchestrator.training.checkpoint import CheckpointStore, TrainState
from tests.conftest import ROOT, run_orch

pytestmark = pytest.mark.integration

JOB = """
[job]
name = "planned"
[defaults]
dataset = "digits"
epochs = 4
batch_size = 32
recipe = { lr = 0.05, schedule = { kind = "cosine" } }
resources = { cpus = 2 }

[[trial]]
name = "LeNet"
model = "lenet5"

[[grid]]
name = "ResNet-20-{recipe.lr}"
model = "resnet20"
resources = { gpus = 0.5, gpu_type = ["GTX 1080 Ti", "RTX 3090"], memory_gb = 8 }
[grid.axes]
"recipe.lr" = [0.05, 0.1]

[[trial]]
name = "DenseNet-BC"
model = "densenet"
model_args = { depth = 100, growth_rate = 12, bottleneck = true, compression = 0.5 }
data = { train_size = 1000, validation_size = 0.1 }
"""


def rows(stdout: str) -> dict[str, str]:
    """Trial name -> its line of the plan table."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if set(line.replace(" ", "")) == {"-"})
    out = {}
    for line in lines[start + 1 :]:
        if line.startswith("total:"):
            break
        out[line.split("  ")[0]] = line
    return out


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    path = tmp_path / "planned.toml"
    path.write_text(JOB)
    return path


def test_plan_shows_new_finished_and_resumable_trials(orch_home: Path, job_file: Path) -> None:
    job = load_job(job_file)
    lenet, r20a, r20b, dense = job.trials
    ws = workspace()
    ledger = Ledger(ws.ledger_url)
    ledger.register_job(job)
    ledger.update_trial(job.name, lenet.key, state="FINISHED", epochs_done=4)
    store = CheckpointStore(ws.storage, r20b.key)
    for epoch in (1, 2):  # two completed epochs: epoch_0001, epoch_0002
        store.save(TrainState(epoch=epoch, arrays={"model": [np.zeros(3, np.float32)]}))
    assert store.epochs() == [1, 2]

    proc = run_orch("plan", str(job_file), env={"ORCH_HOME": str(orch_home)})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"job 'planned' ({job_file}): 4 trials in 4 groups")
    table = rows(out)
    assert list(table) == ["LeNet", "ResNet-20-0.05", "ResNet-20-0.1", "DenseNet-BC"]
    assert table["LeNet"].rstrip().endswith(f"{lenet.key}  finished")
    assert table["ResNet-20-0.05"].rstrip().endswith(f"{r20a.key}  new")
    assert table["ResNet-20-0.1"].rstrip().endswith(f"{r20b.key}  epoch 2 of 4, resumable")
    assert table["DenseNet-BC"].rstrip().endswith(f"{dense.key}  new")
    # params from the zoo's counting walk: the family request builds densenet_bc_100_12.
    assert " 62k " in table["LeNet"] and " 274k " in table["ResNet-20-0.1"]
    assert " 793k " in table["DenseNet-BC"]
    assert "0.5 GPU (GTX 1080 Ti/RTX 3090), 2 CPU, 8 GB" in table["ResNet-20-0.1"]
    assert "  2 CPU  " in table["LeNet"]
    # hours on each acceptable type named by the trials, peak GPU memory for GPU trials.
    assert "h gtx-1080-ti" in out and "h rtx-3090" in out and "GPU mem" in out
    assert " GB " in table["ResNet-20-0.1"] and "(CPU)" in table["LeNet"]
    total = next(line for line in out.splitlines() if line.startswith("total:"))
    assert total.startswith("total: 4 trials: 1 finished, 1 partly done, 2 new; ")
    assert "GPU-hours on the fastest acceptable types" in total
    assert "makespan: no cluster to plan on" in out


CLUSTER = """
[[cluster.node_type]]
name = "box"
gpu_type = "GTX 1080 Ti"
gpus = 2
cpus = 16
memory_gb = 64

[[cluster.node_type]]
name = "cpu"
cpus = 8
"""


def test_plan_formats_and_makespan_on_the_declared_cluster(orch_home: Path, job_file: Path) -> None:
    job_file.write_text(JOB.replace(', "RTX 3090"', "") + CLUSTER)
    env = {"ORCH_HOME": str(orch_home)}
    text = run_orch("plan", str(job_file), env=env)
    assert text.returncode == 0, text.stderr
    assert "makespan on 2 x gtx-1080-ti ([cluster] of the job file): " in text.stdout, text.stdout
    assert "lower bound" in text.stdout
    proc = run_orch("plan", str(job_file), "--format", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [t["name"] for t in data["trials"]][:2] == ["LeNet", "ResNet-20-0.05"]
    resnet = data["trials"][1]
    assert resnet["hours"]["gtx-1080-ti"] > 0 and 0.1 < resnet["gpu_memory_gb"] < 11
    total = data["total"]
    assert total["makespan_h"] >= total["lower_bound_h"] > 0
    assert total["gpu_hours"] > 0
    proc = run_orch("plan", str(job_file), "--format", "csv", env=env)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("trial,model,key,state,params,epochs,batch_size,gpus,cpus,")
    assert "hours_gtx-1080-ti" in lines[0] and len(lines) == 5
    bad = run_orch("plan", str(job_file), "--format", "xml", env=env)
    assert bad.returncode == 2 and "--format: must be one of table, json, csv" in bad.stderr


def test_plan_refuses_a_trial_no_gpu_can_hold(orch_home: Path, job_file: Path) -> None:
    big = JOB.replace(', "RTX 3090"', "").replace(
        'model = "resnet20"', 'model = "resnet20"\nbatch_size = 8192'
    )
    job_file.write_text(big + CLUSTER)
    proc = run_orch("plan", str(job_file), env={"ORCH_HOME": str(orch_home)})
    assert proc.returncode == 0, proc.stderr
    assert 'refused before launch: trial "ResNet-20-0.05" needs about ' in proc.stdout
    assert "the largest acceptable GPU is gtx-1080-ti with 11 GB" in proc.stdout


def test_plan_without_a_workspace_creates_none(orch_home: Path, job_file: Path) -> None:
    proc = run_orch("plan", str(job_file), env={"ORCH_HOME": str(orch_home)})
    assert proc.returncode == 0, proc.stderr
    assert all(line.rstrip().endswith("new") for line in rows(proc.stdout).values())
    assert not orch_home.exists()


def test_plan_of_a_bad_file_is_one_clear_error(orch_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(JOB.replace('model = "lenet5"', 'model = "lenet6"'))
    proc = run_orch("plan", str(bad), env={"ORCH_HOME": str(orch_home)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f'error: {bad}: trial "LeNet": model: unknown model. Did you mean: lenet, lenet5' in (
        proc.stderr
    )


@pytest.mark.parametrize("command", ["plan", "validate", "--help"])
def test_plan_and_validate_import_no_tensorflow_or_ray(
    orch_home: Path, job_file: Path, command: str
) -> None:
    code = (
        "import sys\n"
        "from orchestrator.cli import app\n"
        f"sys.argv = ['orch', {command!r}, {str(job_file)!r}]\n"
        "try:\n    app.main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'ray'})\n"
        "print('HEAVY', heavy)\n"
    )
    env = {**os.environ, "ORCH_HOME": str(orch_home)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout


@pytest.mark.parametrize("job", sorted(p.name for p in (ROOT / "jobs").glob("*.toml")))
def test_plan_of_every_shipped_job(orch_home: Path, job: str) -> None:
    """Every job in jobs/ plans in all three formats (a CPU-only job like the quickstart once
    crashed the text table: it had no GPU type to give an hours column)."""
    for fmt in ("table", "json", "csv"):
        proc = run_orch("plan", f"jobs/{job}", "--format", fmt, env={"ORCH_HOME": str(orch_home)})
        assert proc.returncode == 0, proc.stderr
        if fmt == "table" and job == "quickstart.toml":
            assert "h cpu" in proc.stdout, proc.stdout


def test_plan_says_which_gpu_types_it_has_no_figures_for(orch_home: Path, job_file: Path) -> None:
    env = {"ORCH_HOME": str(orch_home)}
    proc = run_orch("plan", str(job_file), "--gpu", "RTX 9999", "--gpu", "A100", env=env)
    assert proc.returncode == 0, proc.stderr
    note = [line for line in proc.stdout.splitlines() if "not in orch's table" in line]
    assert len(note) == 1 and note[0].startswith("rtx-9999: "), proc.stdout
    assert "a100" not in note[0] and "assume a mid-range GPU" in note[0]
    data = json.loads(run_orch("plan", str(job_file), "--gpu", "RTX 9999", "-f", "json",
                               env=env).stdout)  # fmt: skip
    assert data["assumed_gpu_types"] == ["rtx-9999"]
    plain_run = run_orch("plan", str(job_file), env=env)
    assert "not in orch's table" not in plain_run.stdout


BIG_CLUSTER = """
[[cluster.node_type]]
name = "box"
gpu_type = "GTX 1080 Ti"
gpus = 4
cpus = 32
memory_gb = 128

[[cluster.node_type]]
name = "dgx"
gpu_type = "V100"
gpus = 8
cpus = 64
memory_gb = 512
"""


def test_plan_says_when_orch_profiles_the_job_first(orch_home: Path, tmp_path: Path) -> None:
    """lr_schedules' 30 trials on 12 GPUs: some wait, so orch profiles them first
    (policy/profile.py); plan gives the round's cost. With migrate = false, no round."""
    job = tmp_path / "lr.toml"
    source = (ROOT / "jobs/lr_schedules.toml").read_text()
    job.write_text(source + BIG_CLUSTER)
    env = {"ORCH_HOME": str(orch_home)}
    data = json.loads(run_orch("plan", str(job), "--format", "json", env=env).stdout)
    total = data["total"]
    assert 0 < total["profiling_h"] < 0.05 * total["makespan_h"], total
    text = run_orch("plan", str(job), env=env).stdout
    assert "profiling: orch first trains every trial 2 epochs to measure it, about " in text
    job.write_text(source.replace("[job]\n", "[job]\nmigrate = false\n", 1) + BIG_CLUSTER)
    data = json.loads(run_orch("plan", str(job), "--format", "json", env=env).stdout)
    assert data["total"]["profiling_h"] is None
    assert "profiling:" not in run_orch("plan", str(job), env=env).stdout


def test_plan_scales_its_estimates_by_what_orch_measured(orch_home: Path, job_file: Path) -> None:
    """A model family that ran twice as slow as estimated on a GPU type (the ledger's
    learned ratio, as the recorder keeps it) plans twice as long there; others unchanged."""
    from orchestrator.spec.cost import learned_key

    job_file.write_text(JOB.replace(', "RTX 3090"', "") + CLUSTER)
    env = {"ORCH_HOME": str(orch_home)}

    def hours() -> dict[str, float]:
        proc = run_orch("plan", str(job_file), "--format", "json", env=env)
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        return {t["name"]: t["hours"].get("gtx-1080-ti") for t in data["trials"]}

    before = hours()
    resnet = next(t for t in load_job(job_file).trials if t.model == "resnet20")
    ledger = Ledger(workspace(orch_home).ledger_url)
    ledger.record_speed(learned_key(resnet, "gtx-1080-ti"), 2.0)
    after = hours()
    assert after["ResNet-20-0.05"] == pytest.approx(2 * before["ResNet-20-0.05"], rel=0.01)
    assert after["DenseNet-BC"] == before["DenseNet-BC"]
