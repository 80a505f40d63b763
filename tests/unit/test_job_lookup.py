"""ledger/lookup.py: a job found by its name or its file, and its spec as submitted."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import OrchestratorError, SpecError
from orchestrator.ledger import Ledger
from orchestrator.ledger.lookup import find_job, job_as_submitted, read_job
from orchestrator.spec.load import load_job

JOB = """
[job]
name = "{name}"
[[trial]]
name = "a"
model = "lenet5"
dataset = "digits"
epochs = {epochs}
"""


def test_by_name_or_file_and_as_submitted(orch_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    text = JOB.format(name="lk", epochs=1)
    path.write_text(text)
    submitted = load_job(path)
    ledger = Ledger(f"sqlite:///{orch_home / 'orch.db'}")
    ledger.register_job(submitted, text)

    assert find_job(ledger, "lk").name == "lk"
    assert find_job(ledger, str(path)).name == "lk"  # the file names the job
    assert read_job("lk").spec_text == text  # the workspace's ledger (ORCH_HOME)

    # The file is edited after the submit: the job keeps the trials it was submitted with.
    path.write_text(JOB.format(name="lk", epochs=5))
    spec = job_as_submitted(read_job("lk"))
    assert [t.key for t in spec.trials] == [t.key for t in submitted.trials]
    assert [t.key for t in load_job(path).trials] != [t.key for t in submitted.trials]


def test_unknown_job_lists_the_known_ones(orch_home: Path, tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{orch_home / 'orch.db'}")
    with pytest.raises(OrchestratorError, match=r"no job named 'x' in the ledger \(jobs: none"):
        read_job("x")
    path = tmp_path / "job.toml"
    path.write_text(JOB.format(name="known", epochs=1))
    ledger.register_job(load_job(path))
    with pytest.raises(OrchestratorError, match=r"no job named 'lk' .*\(jobs: known\)"):
        find_job(ledger, "lk")


def test_damaged_submitted_text_is_one_line(orch_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_text(JOB.format(name="lk", epochs=1))
    ledger = Ledger(f"sqlite:///{orch_home / 'orch.db'}")
    ledger.register_job(load_job(path), "[job\nname = ")
    with pytest.raises(SpecError, match=r"job\.toml \(as submitted\): not valid TOML"):
        job_as_submitted(read_job("lk"))
