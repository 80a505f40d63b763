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
    MetricName,
    StopRequest,
    Tag,
    TrialEnd,
    TrialState,
    parse_report,
    trial_state,
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


def test_every_report_comes_back_as_it_was_sent() -> None:
    epoch = EpochReport(
        epoch=4, epochs_done=5, loss=0.3, val_accuracy=0.8, gpu_name="GTX 1080 Ti",
        gpu_count=2, node_id="n1", provenance={"tensorflow": "2.21"},
        extra={"system/cpu_utilization_percentage": 50.0},
    )  # fmt: skip
    stopped = StopRequest(FailureClass.TIMEOUT, "timeout: 9 s").end(epochs_done=5, last=epoch)
    failed = TrialEnd(EndKind.FAILED, FailureClass.CODE_ERROR, "ValueError: x")
    for report in (epoch, stopped, failed):
        back = parse_report(report.to_dict())
        assert back == report and back is not None and back.to_dict() == report.to_dict()
    back = parse_report(stopped.to_dict())
    assert isinstance(back, TrialEnd) and back.state == TrialState.FAILED and back.last == epoch
    assert back.last.provenance == {"tensorflow": "2.21"}  # typed, not left in extra


def test_what_the_driver_reads_from_an_epoch_report() -> None:
    r = EpochReport(
        epoch=2, epochs_done=3, loss=0.5, accuracy=0.9, test_accuracy=0.8, params=62006,
        gpu_name="GTX 1080 Ti", gpu_count=2, precision="mixed_float16", val_on_test=True,
        extra={"system/gpu_0_memory_usage_megabytes": 900.0, "node_ip": "10.0.0.2"},
    )  # fmt: skip
    assert r.epoch_metrics() == {
        MetricName.LOSS: 0.5,
        MetricName.ACCURACY: 0.9,
        MetricName.EPOCHS_DONE: 3.0,
        "system/gpu_0_memory_usage_megabytes": 900.0,
    }
    assert r.final_metrics() == {MetricName.TEST_ACCURACY: 0.8, MetricName.PARAMS: 62006.0}
    assert r.gpu_label == "GTX 1080 Ti x2" and r.node == "10.0.0.2"  # no node id: Tune's IP
    assert r.hardware_tags() == {
        Tag.GPU: "GTX 1080 Ti",
        Tag.GPU_COUNT: 2,
        Tag.PRECISION: "mixed_float16",
        Tag.VAL_ON_TEST: True,
    }
    one = EpochReport(epoch=0, epochs_done=1, gpu_name="CPU", gpu_count=0, node_id="n1")
    assert one.gpu_label == "CPU" and one.node == "n1"


def test_a_stop_request_read_back() -> None:
    request = StopRequest(FailureClass.INFEASIBLE, "no node left")
    assert request.to_dict() == {"failure_class": "infeasible", "reason": "no node left"}
    assert StopRequest.from_dict(request.to_dict()) == request
    assert StopRequest.from_dict({}) == StopRequest(FailureClass.CANCELLED, "stopped")
    assert StopRequest.from_dict(None) is None


def test_a_state_read_back_from_mlflow() -> None:
    assert trial_state("RETRYING") is TrialState.RETRYING
    assert trial_state("KILLED") is TrialState.CANCELLED  # MLflow's status of a cancelled run
    assert trial_state(None, default=TrialState.FAILED) is TrialState.FAILED
    assert trial_state("no such state") is TrialState.PENDING


# The protocol's words that other vocabularies spell the same way: Keras's history keys
# (loss, accuracy), a job file's reference table (accuracy, params, error, time), recipe and
# schedule keys (lr, kind, precision), column headers, checkpoint metadata (epoch), English
# in messages. A literal among these says nothing about the protocol.
COMMON_WORDS = frozenset(
    {
        "loss", "accuracy", "lr", "params", "precision", "epoch", "kind", "message", "reason",
        "error", "extra", "last", "failed", "stopped", "diverged", "cancelled", "timeout",
    }
)  # fmt: skip
# Where a protocol word names something else, on purpose: path (under orchestrator/) ->
# the literals that may stay there, and why.
ELSEWHERE = {
    # the Prometheus label of orch_trial_failures, which dashboards/grafana/orch.json reads
    "tracking/metrics.py": {"failure_class"},
    # the ledger's attempt rows, by their column names
    "ledger/repository.py": {"failure_class"},
    # the table's CSV/JSON columns: an export format of its own, named after Row's fields
    "report/formats.py": {"train_time_s", "provenance"},
    # the report's learning-curve metric, still spelled out where `orch report` is built
    # (moving from cli/report.py to report/job_report.py); MetricName.VAL_ACCURACY is meant
    "report/job_report.py": {"val_accuracy"},
    "cli/report.py": {"val_accuracy"},
}


def _vocabulary() -> frozenset[str]:
    """Every word of the trial -> driver protocol, from the protocol itself: states, failure
    classes, statuses, tag and metric names, and the fields of every report."""
    import dataclasses

    from orchestrator import protocol as p

    words = {str(m) for enum in (p.TrialState, p.JobState, p.FailureClass, p.EndKind) for m in enum}
    for names in (p.Tag, p.MetricName, p.MlflowStatus, p.TuneStatus):
        words |= {v for k, v in vars(names).items() if not k.startswith("_") and isinstance(v, str)}
    for report in (p.EpochReport, p.TrialEnd, p.StopRequest):
        words |= {f.name for f in dataclasses.fields(report)}
    words |= set(p.TrialEnd(p.EndKind.FAILED, p.FailureClass.ERROR, "m").to_dict())
    words |= set(p.TrialEnd(p.EndKind.STOPPED, p.FailureClass.ERROR, "m").to_dict())
    return frozenset(words)


def _literals(source: str) -> list[tuple[int, str]]:
    """String constants of a module, without docstrings and `__all__` (names, not words)."""
    import ast

    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):  # docstring
            skip.add(id(first.value))
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            skip |= {id(n) for n in ast.walk(node.value)}
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
    ]


def test_the_exceptions_are_words_of_the_protocol() -> None:
    vocabulary = _vocabulary()
    assert vocabulary >= COMMON_WORDS
    assert set().union(*ELSEWHERE.values()) <= vocabulary - COMMON_WORDS
    assert {"epochs_done", "failure_class", "FINISHED", "orch.state", "node_lost"} <= vocabulary


def test_no_protocol_literal_outside_the_protocol() -> None:
    """States, failure classes, tag and metric names and report fields are spelled once, in
    protocol.py: everything else names them through it."""
    from pathlib import Path

    import orchestrator

    watched = _vocabulary() - COMMON_WORDS
    root = Path(orchestrator.__file__).parent
    found = [
        f"{rel}:{line}: {text!r}"
        for path in sorted(root.rglob("*.py"))
        if (rel := path.relative_to(root).as_posix()) != "protocol.py"
        for line, text in _literals(path.read_text())
        if text in watched and text not in ELSEWHERE.get(rel, set())
    ]
    assert found == []
