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

from tests.conftest import ORCH, ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
NOISE = (
    "oneDNN",
    "cuda drivers",
    "cuInit",
    "absl",
    "gcs_client",
    "Token authentication is enabled",
    "Traceback",
)
NAMES = ("Residual-Network20", "DenseNet-BC (L=40, k=12), C10+")


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

    def screen(self) -> list[str]:
        """The screen and its history; -J joins a line the terminal wrapped, so a line
        longer than the pane shows as one long line, not as two that each fit."""
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-S", "-", "-t", self.name],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return [line.rstrip() for line in out.stdout.splitlines()]

    def run(self, command: str, timeout: float = 900) -> list[str]:
        marker = f"EXIT-{uuid.uuid4().hex[:6]}"
        self.type(f"clear; tmux clear-history; {command}; echo {marker}=$?")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.screen()
            if any(line.startswith(f"{marker}=") for line in lines):
                return lines
            time.sleep(2)
        raise AssertionError("\n".join(self.screen()))

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
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
        '[[trial]]\nname = "Residual-Network20"\nmodel = "resnet20"\n'
        '[[trial]]\nname = "DenseNet-BC (L=40, k=12), C10+"\nmodel = "densenet"\n'
        "model_args = { depth = 40, growth_rate = 12, bottleneck = true, compression = 0.5 }\n"
    )
    return job


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
        text = _clean(narrow.run(f"{ORCH} submit {job}"), 80)
    finally:
        narrow.close()
    for name in NAMES:
        assert name in text, name  # whole, on one line: no "ResNe…"
    assert "…" not in text
    header = next(line for line in text.splitlines() if "state" in line and "epoch" in line)
    assert " acc " in f"{header} " and "val acc" not in header and "test acc" not in header
    assert "validation set = test set" in text
    wide = Terminal(200, 50, env)
    try:
        text = _clean(wide.run(f"{ORCH} table screens"), 200)
    finally:
        wide.close()
    for name in NAMES:
        assert name in text


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
