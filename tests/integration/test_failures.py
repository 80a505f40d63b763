"""Deterministic failures on the embedded local Ray: reported once, never retried."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from tests.conftest import run_orch

pytestmark = pytest.mark.integration

JOB = """
[job]
name = "bad"
[defaults]
epochs = 2
batch_size = 32
resources = { cpus = 1, max_retries = 3 }

[[trial]]
name = "bad-data"
model = "lenet5"
dataset = "cifar10"

[[trial]]
name = "explodes"
model = "lenet5"
dataset = "digits"
data = { train_size = 200, test_size = 100 }
recipe = { lr = 1e8, augment = "none" }
"""


def test_code_error_and_divergence_are_not_retried(tmp_path: Path) -> None:
    job = tmp_path / "bad.toml"
    job.write_text(JOB)
    # The archive is there (so the check before launch passes: it looks for files, it does
    # not read them) but damaged: every attempt fails the same way inside the trial.
    data = tmp_path / "data"
    data.mkdir()
    (data / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b" + b"not a cifar archive" * 100)
    env = {
        "ORCH_HOME": str(tmp_path / ".orch"),
        "ORCH_DATA_DIR": str(data),
        "ORCH_OFFLINE": "1",
        "HOME": str(tmp_path),
    }  # no Keras cache with CIFAR in it either
    proc = run_orch("submit", str(job), env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 trial(s) did not finish" in proc.stdout
    view = Ledger(f"sqlite:///{tmp_path / '.orch' / 'orch.db'}").job("bad")
    no_data, explodes = view.trials  # type: ignore[union-attr]
    assert (no_data.state, no_data.attempts) == ("FAILED", 1)
    assert no_data.error.startswith("DatasetError: ")  # type: ignore[union-attr]
    assert "cifar-10-python.tar.gz" in no_data.error  # type: ignore[operator]
    assert (explodes.state, explodes.attempts) == ("DIVERGED", 1)
    assert explodes.error.startswith("diverged at epoch 0")  # type: ignore[union-attr]
    table = run_orch("table", "bad", "--format", "md", env=env, cwd=tmp_path)
    assert "DatasetError" in table.stdout and "diverged" in table.stdout
