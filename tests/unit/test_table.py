"""build_table, the verdicts and the text formats (pure)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from orchestrator.report.formats import render, to_csv, to_latex, to_markdown, visible_columns
from orchestrator.report.records import RunRecord
from orchestrator.report.speed import SpeedTable
from orchestrator.report.table import (
    COLUMNS,
    build_table,
    footnotes,
    format_duration,
    format_params,
    params_check,
    parse_count,
    parse_duration,
    short_error,
    verdict,
)


def rec(**kw) -> RunRecord:
    base = dict(
        run_id="r",
        trial_key="k",
        name="ResNet-20",
        model="resnet20",
        state="FINISHED",
        gpu="GTX 1080 Ti",
        batch_size=128,
        epochs=200,
        epochs_done=200,
        params=274442,
        train_time_s=2640.0,
        test_accuracy=0.9182,
        reference={"accuracy": "91.82", "params": "274442"},
        dataset="cifar10",
    )
    base.update(kw)
    return RunRecord(**base)  # type: ignore[arg-type]


def seeds(accs: list[float], **kw) -> list[RunRecord]:
    return [
        rec(
            run_id=f"r{i}",
            seed=i,
            group="ResNet-20",
            name=f"ResNet-20 seed={i}",
            test_accuracy=a,
            start_time_ms=i,
            **kw,
        )
        for i, a in enumerate(accs)
    ]


def test_formatting_like_the_seed_readme() -> None:
    assert format_params(62006) == "62k"
    assert format_params(966986) == "0.97M"
    assert format_params(36497136) == "36.5M"
    assert format_duration(44 * 60) == "44 min"
    assert format_duration(100 * 60) == "1h40"
    assert format_duration(622 * 60) == "10h22"
    assert format_duration(12.4) == "12 s"
    assert format_duration(None) == "-"
    for text in ("30 min", "1h40", "10h22", "38 s", "2h", "44 min"):
        seconds = parse_duration(text)
        assert seconds is not None and format_duration(seconds) == text.replace("2h", "2h00")
    assert parse_duration("soon") is None and parse_duration(None) is None


def test_one_finished_run() -> None:
    (row,) = build_table([rec(test_accuracy=0.9301)])
    assert row.cells() == (
        "ResNet-20",
        "GTX 1080 Ti",
        "0.27M",
        "128",
        "200",
        "44 min",
        "93.01",
        "1",
        "91.82",
        "+1.19",
        "above (+1.19 pts)",
        "ok",
    )
    assert row.state == "FINISHED" and row.n == 1 and row.accuracy_std is None


@pytest.mark.parametrize(
    ("acc", "expected"),
    [
        (91.82, "reproduced"),
        (92.12, "reproduced"),
        (91.52, "reproduced"),
        (92.124, "reproduced"),  # printed as +0.30: within the band
        (92.13, "above (+0.31 pts)"),
        (91.50, "below (-0.32 pts)"),
    ],
)
def test_single_run_noise_band(acc: float, expected: str) -> None:
    assert verdict([acc], 91.82) == expected


def test_noise_band_is_a_parameter() -> None:
    assert verdict([92.5], 91.82, noise_pp=1.0) == "reproduced"
    (row,) = build_table([rec(test_accuracy=0.925)], noise_pp=1.0)
    assert row.verdict == "reproduced"
    assert verdict([91.82], None) == "" and verdict([], 91.82) == ""


def test_seeds_mean_sample_std_and_n() -> None:
    (row,) = build_table(seeds([0.918, 0.920, 0.922]))
    assert row.n == 3 and row.runs == 3
    assert row.accuracy == pytest.approx(92.0)
    assert row.accuracy_std == pytest.approx(0.2)  # sample std (n - 1): population is 0.163
    cells = dict(zip(COLUMNS, row.cells(), strict=True))
    assert cells["accuracy (%)"] == "92.00 ± 0.20" and cells["n"] == "3"
    assert cells["diff"] == "+0.18" and cells["verdict"] == "reproduced (+0.9σ)"
    assert row.network == "ResNet-20" and row.run_ids == ("r0", "r1", "r2")


def test_seeds_verdict_in_standard_deviations() -> None:
    # mean 93.0, std 0.2: 1.18 points = 5.9 sigma above the reference.
    assert verdict([92.8, 93.0, 93.2], 91.82) == "above (+5.9σ)"
    assert verdict([90.8, 91.0, 91.2], 91.82) == "below (-4.1σ)"
    # A tiny measured spread does not make a 0.2-point gap significant: the band is a floor.
    assert verdict([92.01, 92.02, 92.03], 91.82).startswith("reproduced")
    # Identical runs: no spread to express the gap in, so points.
    assert verdict([93.0, 93.0], 91.82) == "above (+1.18 pts)"


def test_params_check() -> None:
    assert params_check(850_000, 850_000) == "ok"
    assert params_check(866_000, 850_000) == "ok"  # +1.9%
    assert params_check(850_000, 790_000) == "params differ: 0.85M vs 0.79M (+8%)"
    assert params_check(None, 790_000) == "" and params_check(850_000, None) == ""
    assert parse_count("0.85M") == 850_000 and parse_count("62k") == 62_000
    assert parse_count("769,962") == 769_962 and parse_count("lots") is None
    (row,) = build_table([rec(reference={"accuracy": "91.82", "params": "0.79M"}, params=850_000)])
    assert row.params_check == "params differ: 0.85M vs 0.79M (+8%)"


def test_running_and_failed_cells() -> None:
    done, running, pending, failed, diverged = build_table(
        [
            rec(test_accuracy=0.9301, start_time_ms=1),
            rec(
                name="WRN-16-8",
                state="RUNNING",
                epochs_done=3,
                test_accuracy=None,
                train_time_s=600.0,
                reference={},
                start_time_ms=2,
            ),
            rec(
                name="NiN",
                state="PENDING",
                epochs_done=0,
                test_accuracy=None,
                train_time_s=None,
                start_time_ms=3,
            ),
            rec(
                name="VGG19",
                state="FAILED",
                test_accuracy=None,
                start_time_ms=4,
                error="Traceback (most recent call last):\n  ...\nDatasetError: no cifar10",
            ),
            rec(name="DenseNet", state="DIVERGED", test_accuracy=None, error=None, start_time_ms=5),
        ]
    )
    assert done.state == "FINISHED"
    c = dict(zip(COLUMNS, running.cells(), strict=True))
    assert running.state == "RUNNING" and c["accuracy (%)"] == "running: epoch 3/200"
    assert c["training time"] == "10 min so far" and c["diff"] == "" and c["verdict"] == ""
    assert c["n"] == "0/1"
    assert pending.cells()[6] == "pending: epoch 0/200"
    assert failed.state == "FAILED" and failed.cells()[6] == "failed: DatasetError: no cifar10"
    assert failed.cells()[5] == "44 min at failure"
    assert failed.error is not None and failed.error.startswith("Traceback")
    assert diverged.state == "DIVERGED" and diverged.cells()[6] == "diverged: see MLflow"


def test_partly_finished_seeds() -> None:
    runs = seeds([0.92, 0.924])
    runs += [
        rec(
            run_id="r2",
            seed=2,
            group="ResNet-20",
            name="ResNet-20 seed=2",
            state="RUNNING",
            epochs_done=50,
            test_accuracy=None,
            start_time_ms=3,
        ),
        rec(
            run_id="r3",
            seed=3,
            group="ResNet-20",
            name="ResNet-20 seed=3",
            state="FAILED",
            error="OOM",
            test_accuracy=None,
            start_time_ms=4,
        ),
    ]
    (row,) = build_table(runs)
    c = dict(zip(COLUMNS, row.cells(), strict=True))
    assert row.state == "RUNNING" and c["n"] == "2/4"
    assert c["accuracy (%)"] == "92.20 ± 0.28"
    assert c["verdict"] == "reproduced (+1.3σ); running: epoch 50/200; failed: OOM"


def test_retrying_shows_progress() -> None:
    (row,) = build_table(
        [rec(state="RETRYING", epochs_done=7, test_accuracy=None, error="node died")]
    )
    assert row.state == "RUNNING" and row.cells()[6] == "retrying: epoch 7/200"


def test_order_follows_position_then_start_time() -> None:
    rows = build_table(
        [
            rec(name="B", position=1, start_time_ms=1),
            rec(name="A", position=0, start_time_ms=9),
            rec(name="C", start_time_ms=0),
        ]
    )
    assert [r.network for r in rows] == ["A", "B", "C"]
    rows = build_table([rec(name="Y", start_time_ms=5), rec(name="X", start_time_ms=2)])
    assert [r.network for r in rows] == ["X", "Y"]


def test_mixed_hardware_is_marked() -> None:
    (row,) = build_table([rec(gpu="GTX 1080 Ti + Tesla V100", mixed_hardware=True)])
    assert row.cells()[1] == "GTX 1080 Ti + Tesla V100 †"
    assert footnotes([row])[0].startswith("† ran on more than one GPU type")


def test_time_normalised_to_a_reference_gpu() -> None:
    runs = [
        rec(
            name="ResNet-20",
            gpu="GTX 1080 Ti",
            images_per_s=2000.0,
            train_time_s=3600.0,
            start_time_ms=1,
        ),
        rec(
            name="ResNet-20 (V100)",
            gpu="Tesla V100",
            images_per_s=4000.0,
            train_time_s=1800.0,
            start_time_ms=2,
        ),
        rec(
            name="LeNet",
            model="lenet5",
            gpu="Tesla V100",
            images_per_s=9000.0,
            train_time_s=600.0,
            start_time_ms=3,
        ),
    ]
    speeds = SpeedTable.from_records(runs)
    assert speeds.ratio("resnet20", "GTX 1080 Ti", "Tesla V100") == 2.0
    assert speeds.ratio("lenet5", "Tesla V100", "GTX 1080 Ti") is None
    assert speeds.to_dict() == {
        "lenet5": {"Tesla V100": 9000.0},
        "resnet20": {"GTX 1080 Ti": 2000.0, "Tesla V100": 4000.0},
    }
    ti, v100, lenet = build_table(runs, normalize_to="GTX 1080 Ti")
    assert ti.cells()[5] == "1h00" and ti.time_note == "normalised"
    assert v100.cells()[5] == "1h00" and v100.cells()[1] == "Tesla V100"
    assert lenet.cells()[5] == "10 min*" and lenet.time_note == "not normalised"
    notes = footnotes([ti, v100, lenet])
    assert notes[0] == "Training time normalised to GTX 1080 Ti with measured images/s ratios."
    assert notes[1].startswith("* no measured speed ratio to GTX 1080 Ti")
    # Without --normalize-to the times stay as measured.
    assert [r.cells()[5] for r in build_table(runs)] == ["1h00", "30 min", "10 min"]


def test_mixed_runs_give_no_speed_and_stay_unnormalised() -> None:
    runs = [
        rec(gpu="A + B", mixed_hardware=True, images_per_s=10.0),
        rec(name="other", gpu="B", images_per_s=20.0, start_time_ms=1),
    ]
    assert SpeedTable.from_records(runs).throughput == {("resnet20", "B"): 20.0}
    mixed, _ = build_table(runs, normalize_to="B")
    assert mixed.time_note == "not normalised"


def test_short_error_keeps_the_last_line() -> None:
    assert short_error("a\nb\nValueError: bad") == "ValueError: bad"
    assert short_error("x" * 100).endswith("…") and len(short_error("x" * 100)) == 60
    assert short_error(None) == "see MLflow"


def test_short_error_of_a_multi_line_message_is_its_first_line() -> None:
    # A message that lists what was tried: its tail ("- method tar: ...") says nothing.
    message = "DatasetError: x.tar.gz: cannot read (\n- method gz: bad\n- method tar: bad)"
    assert short_error(message) == "DatasetError: x.tar.gz: cannot read ("
    traceback = "Traceback (most recent call last):\n  File 'a.py'\nKeyError: 'k'"
    assert short_error(traceback) == "KeyError: 'k'"
    assert short_error("diverged at epoch 0: loss=nan") == "diverged at epoch 0: loss=nan"


def test_markdown() -> None:
    md = to_markdown(build_table([rec()]))
    lines = md.splitlines()
    assert lines[0] == (
        "| network | GPU | params | batch size | epochs | training time | "
        "accuracy (%) | n | reference (%) | diff | verdict | params check |"
    )
    assert lines[2] == (
        "| ResNet-20 | GTX 1080 Ti | 0.27M | 128 | 200 | 44 min | 91.82 | 1 | "
        "91.82 | +0.00 | reproduced | ok |"
    )
    assert len(lines) == 3  # no footnotes without markers


def test_csv_carries_numbers() -> None:
    text = to_csv(build_table(seeds([0.918, 0.920, 0.922])))
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["accuracy"] == "92.0" and row["accuracy_std"] == "0.2" and row["n"] == "3"
    assert row["train_time_s"] == "2640.0" and row["training_time"] == "44 min"
    assert row["run_ids"] == "r0 r1 r2" and row["mixed_hardware"] == "false"


def test_json_and_latex_and_html() -> None:
    rows = build_table(
        [
            rec(),
            rec(
                name="VGG19",
                state="FAILED",
                error="boom & <bust>",
                test_accuracy=None,
                start_time_ms=1,
            ),
        ]
    )
    doc = json.loads(render(rows, "json", "demo"))
    assert doc["job"] == "demo" and doc["rows"][1]["state"] == "FAILED"
    assert doc["cells"][0]["accuracy (%)"] == "91.82"
    tex = to_latex(rows, caption="demo_job")
    assert r"\toprule" in tex and r"boom \& <bust>" in tex and r"demo\_job" in tex
    page = render(rows, "html")
    assert "boom &amp; &lt;bust&gt;" in page and 'class="state-failed"' in page
    assert "verdict-reproduced" in page
    with pytest.raises(ValueError):
        render(rows, "xlsx")


def test_visible_columns_hide_empty_comparisons() -> None:
    rows = build_table([rec(reference={})])
    shown = [COLUMNS[i] for i in visible_columns(rows)]
    assert shown == [
        "network",
        "GPU",
        "params",
        "batch size",
        "epochs",
        "training time",
        "accuracy (%)",
    ]


def test_normalize_to_label_is_checked() -> None:
    from orchestrator.errors import OrchestratorError
    from orchestrator.report.job_table import hardware_label

    measured = ["GTX 1080 Ti", "Tesla V100"]
    assert hardware_label("gtx 1080 TI", measured) == "GTX 1080 Ti"
    with pytest.raises(OrchestratorError, match='Did you mean "Tesla V100"'):
        hardware_label("Tesla V10", measured)
    with pytest.raises(OrchestratorError, match="Measured on: none"):
        hardware_label("A100", [])
