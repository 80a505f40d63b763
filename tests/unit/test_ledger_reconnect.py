"""The ledger's retry of a transaction whose connection dropped (ledger/reconnect.py).
The real thing — a PostgreSQL restart mid-job — is tests/integration/test_outages.py."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from orchestrator.ledger.reconnect import is_transient, retrying


def dropped() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures, self.calls, self.waits = failures, 0, []  # type: ignore[var-annotated]
        self.on_wait = self.waits.append

    @retrying
    def work(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def test_transient_errors_are_retried_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("orchestrator.ledger.reconnect._BACKOFF_S", (0.01,))
    flaky = Flaky([dropped(), dropped()])
    assert flaky.work() == "done" and flaky.calls == 3
    assert flaky.waits[0] is not None and "the ledger at" in flaky.waits[0]
    assert flaky.waits[-1] is None  # back: nothing to wait for


def test_other_errors_raise_at_once() -> None:
    flaky = Flaky([IntegrityError("INSERT", {}, Exception("duplicate key"))])
    with pytest.raises(IntegrityError):
        flaky.work()
    assert flaky.calls == 1 and flaky.waits == []
    assert not is_transient(OperationalError("x", {}, Exception("no such table: jobs")))


def test_gives_up_after_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_LEDGER_RETRY_S", "0.2")
    monkeypatch.setattr("orchestrator.ledger.reconnect._BACKOFF_S", (0.05,))
    flaky = Flaky([dropped() for _ in range(100)])
    with pytest.raises(OperationalError):
        flaky.work()
    assert 2 <= flaky.calls < 100
