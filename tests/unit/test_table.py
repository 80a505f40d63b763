"""build_table and its formatting (pure)."""

from __future__ import annotations

from orchestrator.report.records import RunRecord
from orchestrator.report.table import build_table, format_duration, format_params, to_markdown


def rec(**kw) -> RunRecord:
    base = dict(run_id="r", trial_key="k", name="ResNet-20", model="resnet20", state="FINISHED",
                gpu="GTX 1080 Ti", batch_size=128, epochs=200, epochs_done=200, params=274442,
                train_time_s=2640.0, test_accuracy=0.9182, reference={"accuracy": "91.82"})
    base.update(kw)
    return RunRecord(**base)  # type: ignore[arg-type]


def test_formatting_like_the_seed_readme() -> None:
    assert format_params(62006) == "62k"
    assert format_params(966986) == "0.97M"
    assert format_params(36497136) == "36.5M"
    assert format_duration(44 * 60) == "44 min"
    assert format_duration(100 * 60) == "1h40"
    assert format_duration(622 * 60) == "10h22"
    assert format_duration(12.4) == "12 s"


def test_rows() -> None:
    done, running, failed = build_table([
        rec(test_accuracy=0.9301),
        rec(name="WRN", state="RUNNING", epochs_done=3, test_accuracy=None, reference={}),
        rec(name="VGG", state="FAILED", error="DatasetError: no cifar10", test_accuracy=None),
    ])
    assert done.cells() == ("ResNet-20", "GTX 1080 Ti", "0.27M", "128", "200", "44 min",
                            "93.01", "91.82", "+1.19")
    assert running.accuracy == "running 3/200" and running.diff == ""
    assert failed.accuracy.startswith("failed: DatasetError")


def test_markdown() -> None:
    md = to_markdown(build_table([rec()]))
    lines = md.splitlines()
    assert lines[0].startswith("| network | GPU | params |")
    assert lines[2] == "| ResNet-20 | GTX 1080 Ti | 0.27M | 128 | 200 | 44 min | 91.82 | 91.82 | +0.00 |"
