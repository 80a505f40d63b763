"""What a person sees, read off a real terminal: tmux at 80x24 and 200x50, commands typed
with send-keys, the screen read with capture-pane. No TensorFlow/absl/CUDA lines, no Ray
token notice, every trial name whole, one accuracy column when validation is the test set,
and an error before launch standing on its own."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import ORCH, ROOT, unavailable

pytestmark = pytest.mark.integration
NOISE = (
    "oneDNN",
    "cuda drivers",
    "cuInit",
    "absl",
    "gcs_client",
    "Token authentication is enabled",
    "Traceback",
)
# Names that share long prefixes: cut anywhere near their ends, two become one.
NAMES = (
    "LeNet-5 (C10+ recipe, cosine schedule), lr 0.05",
    "LeNet-5 (C10+ recipe, cosine schedule), lr 0.02",
    "Residual-Network20 (C10+ recipe, cosine schedule)",
)


class Terminal:
    def __init__(self, width: int, height: int, env: dict[str, str]) -> None:
        self.name = f"orch-test-{uuid.uuid4().hex[:8]}"
        self.width = width
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height)],
            check=True,
        )
        self.type(f"export {exports}; cd {ROOT}; clear")

    def type(self, line: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, line, "Enter"], check=True)

    def screen(self, join: bool = True) -> list[str]:
        """The screen and its history. join (-J) joins a line the terminal wrapped, so a
        line longer than the pane shows as one long line, not as two that each fit. A live
        display redraws in place, and tmux keeps the wrap mark of a line drawn over, so
        where one was drawn, read the screen as shown (join=False) and check its rows."""
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", *(["-J"] if join else []), "-S", "-", "-t", self.name],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return [line.rstrip() for line in out.stdout.splitlines()]

    def run(self, command: str, timeout: float = 900, join: bool = True) -> list[str]:
        marker = f"EXIT-{uuid.uuid4().hex[:6]}"
        self.type(f"clear; tmux clear-history; {command}; echo {marker}=$?")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.screen(join)
            if any(line.startswith(f"{marker}=") for line in lines):
                return lines
            time.sleep(2)
        raise AssertionError("\n".join(self.screen(join)))

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    if shutil.which("tmux") is None:  # skipped on a developer's machine; CI installs it
        unavailable("tmux is not installed: apt-get install -y tmux")
    return {
        "ORCH_HOME": str(tmp_path / ".orch"),
        "ORCH_DASHBOARD": "0",
        "ORCH_OFFLINE": "1",
        "KERAS_HOME": str(tmp_path / "keras"),
        "PATH": f"{Path(ORCH).parent}:/usr/bin:/bin",
    }


def _job(tmp_path: Path) -> Path:
    job = tmp_path / "names.toml"
    job.write_text(
        '[job]\nname = "screens"\n[defaults]\ndataset = "digits"\nepochs = 1\n'
        "batch_size = 64\ndata = { train_size = 200 }\nresources = { cpus = 1 }\n"
        f'[[trial]]\nname = "{NAMES[0]}"\nmodel = "lenet5"\nrecipe = {{ lr = 0.05 }}\n'
        f'[[trial]]\nname = "{NAMES[1]}"\nmodel = "lenet5"\nrecipe = {{ lr = 0.02 }}\n'
        f'[[trial]]\nname = "{NAMES[2]}"\nmodel = "resnet20"\n'
    )
    return job


def _rows(text: str) -> list[str]:
    """The lines that hold a trial's name at their start (a table row), stripped."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith(NAMES)]


def _clean(lines: list[str], width: int) -> str:
    assert max((len(line) for line in lines), default=0) <= width
    text = "\n".join(lines)
    for noise in NOISE:
        assert noise not in text, f"{noise!r} on the screen:\n{text}"
    return text


@pytest.mark.slow
def test_submit_at_80_columns_then_the_table_at_200(tmp_path: Path, env) -> None:  # type: ignore[no-untyped-def]
    job = _job(tmp_path)
    narrow = Terminal(80, 24, env)
    try:
        submitted = _clean(narrow.run(f"{ORCH} submit {job}", join=False), 80)
        table80 = _clean(narrow.run(f"{ORCH} table screens"), 80)
    finally:
        narrow.close()
    # The live table and the final one, at 80 columns: every name whole on its row, no
    # column cut to "FINISH…"; the live table's one accuracy column and its footer.
    assert "…" not in submitted and "…" not in table80
    for name in NAMES:
        rows = [row for row in _rows(submitted) if row.startswith(name)]
        assert len(rows) >= 2, name  # the live table's row and the final table's
        live_row = rows[0].split()  # ... FINISHED 1/1 12.34%: all of it on the name's line
        assert live_row[-3:-1] == ["FINISHED", "1/1"] and live_row[-1].endswith("%"), rows[0]
        assert any(row.startswith(name) for row in _rows(table80)), name
    live = next(line for line in submitted.splitlines() if "state" in line and "epoch" in line)
    assert live.split() == ["trial", "state", "epoch", "acc"], live  # one accuracy column
    assert "validation set = test set" in submitted
    assert "FINISHED" in submitted
    # The final table at 80 columns: what every row shares said once, above its rows.
    assert "all rows: CPU, batch size 64, 1 epochs" in table80
    wide = Terminal(200, 50, env)
    try:
        table200 = _clean(wide.run(f"{ORCH} table screens"), 200)
    finally:
        wide.close()
    header = next(line for line in table200.splitlines() if "network" in line)
    for col in ("GPU", "params", "batch size", "epochs", "training time", "accuracy (%)"):
        assert col in header  # at 200 columns nothing has to go
    for name in NAMES:
        assert any(row.startswith(name) for row in _rows(table200)), name


def test_train_and_an_early_error_at_80_columns(tmp_path: Path, env) -> None:  # type: ignore[no-untyped-def]
    term = Terminal(80, 24, env)
    try:
        lines = term.run(f"{ORCH} train lenet5 --epochs 2 --train-size 200")
        _clean(lines, 80)  # every epoch line whole within 80 columns, no library noise
        # Validation is the test set (the quickstart's protocol): one accuracy column,
        # headed "test acc", and the note said once.
        header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["epoch"])
        assert lines[header].split() == [
            "epoch", "loss", "train", "acc", "test", "loss", "test", "acc", "lr", "time", "img/s",
        ]  # fmt: skip
        assert "validation set = test set" in lines[header - 1]
        assert sum("validation set = test set" in line for line in lines) == 1
        epochs = [line.split() for line in lines[header + 1 : header + 3]]
        assert [e[0] for e in epochs] == ["1/2", "2/2"]
        assert all(len(e) == 9 and e[2].endswith("%") and e[4].endswith("%") for e in epochs)
        assert not any("val acc" in line or "val loss" in line for line in lines)
        missing = tmp_path / "c10.toml"
        missing.write_text(
            '[job]\nname = "c10"\n[[trial]]\nname = "ResNet-20"\nmodel = "resnet20"\n'
            'dataset = "cifar10"\nepochs = 1\nresources = { cpus = 1 }\n'
        )
        lines = term.run(f"{ORCH} submit {missing}")
    finally:
        term.close()
    error = next(i for i, line in enumerate(lines) if line.startswith("error:"))
    text = _clean(lines[:error] + lines[error + 1 :], 80)  # the error's own line may wrap
    text += "\n" + lines[error]
    # The error stands alone: no half-drawn live table above it.
    assert not any("state" in line and "epoch" in line for line in lines[:error])
    assert "dataset 'cifar10' cannot be read on node" in text
