"""The benchmark table from runs a real `orch submit` wrote (not the hand-made run writer
of test_table_mlflow.py): a real local Ray, real Keras training on a few hundred digits,
a real MLflow SQLite store, then `orch table` with nothing but the job's name.

Golden Markdown, with the cells only a training run can know (accuracy, training time,
and what follows from them) filled in from what MLflow holds; everything else is fixed
text: the columns, one row per trial in job-file order, the reference numbers of the
job file's `reference` tables, the exact parameter counts and the parameter check.
"""

# ruff: noqa: E501  (the golden table is compared as exact text, one table row per line)
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_orch

pytestmark = pytest.mark.integration

JOB = """
[job]
name = "golden_submit"

[defaults]
dataset = "digits"
data = { train_size = 256, test_size = 100 }
epochs = 2
batch_size = 32
recipe = { lr = 0.05, augment = "none", preprocess = "meanstd" }
resources = { cpus = 1 }

[defaults.reference]
gpu = "GTX 1080 Ti"

[[trial]]
name = "LeNet-5"
model = "lenet5"
reference = { accuracy = 99.5, params = 62_006, time = "1 min" }

[[trial]]
name = "ResNet-8"
model = "resnet"
model_args = { depth = 8 }
reference = { error = 12.25, params = 1_000_000 }
"""

# Exact counts on 32x32x3 digits, 10 classes (BN statistics included): LeNet-5's is the
# README's; the reference of ResNet-8 is far from its count on purpose.
PARAMS = {"LeNet-5": 62_006, "ResNet-8": 78_666}
REFERENCE = {"LeNet-5": 99.5, "ResNet-8": 87.75}  # error 12.25 -> accuracy 87.75

GOLDEN_MD = """\
| network | GPU | params | batch size | epochs | training time | accuracy (%) | n | reference (%) | diff | verdict | params check |
|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|:---|:---|
| LeNet-5 | CPU | 62k | 32 | 2 | {time[LeNet-5]} | {acc[LeNet-5]} | 1 | 99.50 | {diff[LeNet-5]} | {verdict[LeNet-5]} | ok |
| ResNet-8 | CPU | 79k | 32 | 2 | {time[ResNet-8]} | {acc[ResNet-8]} | 1 | 87.75 | {diff[ResNet-8]} | {verdict[ResNet-8]} | params differ: 79k vs 1.00M (-92%) |
"""

COLUMNS = [
    "network",
    "GPU",
    "params",
    "batch size",
    "epochs",
    "training time",
    "accuracy (%)",
    "n",
    "reference (%)",
    "diff",
    "verdict",
    "params check",
]


def readme_time(seconds: float) -> str:
    """The README's way of writing a training time: '38 s', '44 min', '1h40'."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}"


def expected_verdict(diff: float) -> str:
    """One run against the published accuracy, with the default noise band of 0.3 points."""
    if round(abs(diff), 2) <= 0.3:
        return "reproduced"
    return f"{'above' if diff > 0 else 'below'} ({diff:+.2f} pts)"


def test_table_of_a_real_submit(tmp_path: Path) -> None:
    job_file = tmp_path / "golden_submit.toml"
    job_file.write_text(JOB)
    home = tmp_path / ".orch"
    env = {"ORCH_HOME": str(home)}

    submitted = run_orch("submit", str(job_file), env=env, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert "2 to run" in submitted.stdout

    # What MLflow holds for each trial, read with MLflow's own client.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = client.get_experiment_by_name("golden_submit")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    trials = {r.info.run_name: r for r in runs if r.data.tags.get("orch.role") == "trial"}
    (parent,) = [r for r in runs if r.data.tags.get("orch.role") == "job"]
    assert set(trials) == {"LeNet-5", "ResNet-8"}
    held: dict[str, dict[str, Any]] = {}
    for name, run in trials.items():
        m = run.data.metrics
        assert m["params"] == PARAMS[name]
        acc = 100 * m["test_accuracy"]
        # 100 test images: the accuracy is a whole number of percent
        assert acc == pytest.approx(round(acc), abs=1e-6) and 0 <= acc <= 100
        held[name] = {
            "run_id": run.info.run_id,
            "acc": acc,
            "time_s": m["train_time_s"],
            "diff": acc - REFERENCE[name],
        }

    # Markdown: the golden text, each run's numbers as MLflow holds them.
    md = run_orch("table", "golden_submit", "--format", "md", env=env, cwd=tmp_path)
    assert md.returncode == 0, md.stderr
    expected = GOLDEN_MD.format(
        time={n: readme_time(h["time_s"]) for n, h in held.items()},
        acc={n: f"{h['acc']:.2f}" for n, h in held.items()},
        diff={n: f"{h['diff']:+.2f}" for n, h in held.items()},
        verdict={n: expected_verdict(h["diff"]) for n, h in held.items()},
    )
    assert md.stdout == expected

    # The same table is what submit attached to the job's parent run for the MLflow UI.
    attached = Path(
        client.download_artifacts(parent.info.run_id, "table/benchmark.md", str(tmp_path))
    )
    assert attached.read_text() == expected

    # JSON: the numbers behind the cells.
    js = run_orch("table", "golden_submit", "--format", "json", env=env, cwd=tmp_path)
    assert js.returncode == 0, js.stderr
    doc = json.loads(js.stdout)
    assert doc["job"] == "golden_submit" and doc["columns"] == COLUMNS
    assert [r["network"] for r in doc["rows"]] == ["LeNet-5", "ResNet-8"]
    for row, cells in zip(doc["rows"], doc["cells"], strict=True):
        name = row["network"]
        h = held[name]
        assert row["model"] == {"LeNet-5": "lenet5", "ResNet-8": "resnet"}[name]
        assert (row["dataset"], row["state"], row["gpu"]) == ("digits", "FINISHED", "CPU")
        assert (row["batch_size"], row["epochs"], row["n"], row["runs"]) == (32, 2, 1, 1)
        assert row["params"] == PARAMS[name]
        assert row["accuracy"] == round(h["acc"], 3) and row["accuracy_std"] is None
        assert row["train_time_s"] == round(h["time_s"], 1)
        assert row["reference"] == REFERENCE[name]
        assert row["diff"] == round(h["diff"], 3)
        assert row["reference_params"] == {"LeNet-5": 62_006, "ResNet-8": 1_000_000}[name]
        assert row["run_ids"] == [h["run_id"]]
        assert row["error"] is None and row["progress"] == ""
        # the provenance the trial recorded (versions, data fingerprint) reaches the table
        assert row["provenance"] and row["provenance_differs"] == []
        # and the cells are the Markdown row's
        md_row = next(ln for ln in expected.splitlines() if ln.startswith(f"| {name} |"))
        assert [cells[c] for c in COLUMNS] == md_row.strip("| ").split(" | ")

    # `orch resume` trains nothing again, and prints the table of the same runs.
    resumed = run_orch("resume", "golden_submit", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "golden_submit: 2 trials, 2 already finished, 0 to run" in resumed.stdout
    for name, h in held.items():
        lines = resumed.stdout.splitlines()
        assert any(name in ln and f"{h['acc']:.2f}" in ln for ln in lines), resumed.stdout
    assert len(client.search_runs([exp.experiment_id])) == 3
