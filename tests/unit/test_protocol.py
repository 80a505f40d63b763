"""The trial -> driver vocabulary: typed reports that become exactly the dicts the driver
has always read, and parse back to the same values (issue 12 §2)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orchestrator import failures
from orchestrator.protocol import (
    INFRASTRUCTURE,
    EndKind,
    EpochReport,
    FailureClass,
    TrialEnd,
    TrialState,
    parse_report,
)


def test_an_epoch_report_is_a_flat_dict_without_unmeasured_values() -> None:
    r = EpochReport(epoch=2, epochs_done=3, loss=0.5, lr=0.1, extra={"system/cpu": 7.0})
    assert r.to_dict() == {"epoch": 2, "epochs_done": 3, "loss": 0.5, "lr": 0.1, "system/cpu": 7.0}
    back = parse_report({**r.to_dict(), "node_id": "n1"})
    assert isinstance(back, EpochReport)
    assert back.loss == 0.5 and back.node_id == "n1" and back.extra == {"system/cpu": 7.0}


@pytest.mark.parametrize(
    ("end", "legacy"),
    [
        (
            TrialEnd(EndKind.DIVERGED, FailureClass.DIVERGED, "diverged at epoch 1: loss=nan",
                     last=EpochReport(epoch=1, epochs_done=1, loss=float("inf"))),
            {"epoch": 1, "epochs_done": 1, "loss": float("inf"), "diverged": 1,
             "message": "diverged at epoch 1: loss=nan"},
        ),
        (
            TrialEnd(EndKind.FAILED, FailureClass.CODE_ERROR, "ValueError: x"),
            {"failed": 1, "failure_class": "code_error", "message": "ValueError: x"},
        ),
        (
            TrialEnd(EndKind.STOPPED, FailureClass.TIMEOUT, "timeout: 9 s", epochs_done=2,
                     extra={"params": 10}),
            {"params": 10, "epochs_done": 2, "stopped": 1, "failure_class": "timeout",
             "reason": "timeout: 9 s"},
        ),
    ],
)  # fmt: skip
def test_a_trial_end_is_the_dict_the_driver_always_read(end: TrialEnd, legacy: dict) -> None:
    assert end.to_dict() == legacy
    back = parse_report(legacy)
    assert isinstance(back, TrialEnd)
    assert (back.kind, back.failure_class, back.message) == (
        end.kind,
        end.failure_class,
        end.message,
    )


@pytest.mark.parametrize(
    ("report", "state"),
    [
        ({"diverged": 1, "message": "m"}, TrialState.DIVERGED),
        ({"failed": 1, "failure_class": "code_error", "message": "m"}, TrialState.FAILED),
        ({"stopped": 1, "failure_class": "cancelled", "reason": "r"}, TrialState.CANCELLED),
        ({"stopped": 1, "failure_class": "infeasible", "reason": "r"}, TrialState.FAILED),
        ({"stopped": 1, "failure_class": "no such class", "reason": "r"}, TrialState.CANCELLED),
    ],
)
def test_the_state_a_trial_end_leaves(report: dict, state: TrialState) -> None:
    end = parse_report(report)
    assert isinstance(end, TrialEnd) and end.state == state


def test_tunes_bookkeeping_results_are_no_report() -> None:
    assert parse_report({"done": True, "training_iteration": 3}) is None


def test_states_and_classes_are_the_strings_stored_everywhere() -> None:
    from orchestrator.ledger import FINISHED, TERMINAL

    assert FINISHED == "FINISHED" and set(TERMINAL) == {
        "FINISHED",
        "FAILED",
        "DIVERGED",
        "CANCELLED",
    }
    assert FailureClass.CODE_ERROR == "code_error" and FailureClass.NODE_LOST in INFRASTRUCTURE
    assert failures.classify("CUDA out of memory") is FailureClass.OOM
    assert not failures.counts_against_budget(FailureClass.DRIVER_LOST)


def test_the_protocol_is_pure() -> None:
    code = (
        "import sys, orchestrator.protocol; "
        "assert not {'ray', 'tensorflow', 'mlflow', 'sqlalchemy'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_state_tag_or_failure_class_literal_outside_the_protocol() -> None:
    """States, failure classes and orch.* tag names are spelled once, in protocol.py."""
    import re
    from pathlib import Path

    import orchestrator

    pattern = re.compile(
        r'"(?:PENDING|RUNNING|RETRYING|FINISHED|FAILED|DIVERGED|CANCELLED|SKIPPED|PARTIAL|'
        r"SUBMITTED|KILLED|TERMINATED|node_lost|driver_lost|oom|code_error|infeasible|"
        r'cancelled|timeout)"|"orch\.(?!db"|toml")[a-z_.]+"'
    )
    root = Path(orchestrator.__file__).parent
    found = [
        f"{path.relative_to(root)}:{n}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "protocol.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line) and "__all__" not in line
    ]
    assert found == []
