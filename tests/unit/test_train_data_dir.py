"""`orch train --help` says how to point at a dataset, and --data-dir is where it looks."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_orch


def test_help_names_every_way_to_point_at_data() -> None:
    out = run_orch("train", "--help").stdout
    for text in ("--data-dir", "ORCH_DATA_DIR", "data.data_dir", "ORCH_OFFLINE"):
        assert text in out, text


def test_data_dir_is_searched_and_named_in_the_error(tmp_path: Path) -> None:
    given = tmp_path / "my-data"
    proc = run_orch(
        "train", "lenet5", "-d", "cifar10", "--data-dir", str(given), "--epochs", "1",
        env={"ORCH_OFFLINE": "1", "ORCH_HOME": str(tmp_path / ".orch"),
             "KERAS_HOME": str(tmp_path / "keras")},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr + proc.stdout
    assert str(given / "cifar-10-python.tar.gz") in err.replace("\n", "")
    assert "orch is offline" in err and "Traceback" not in err
