"""Riding out a ledger database that restarts or drops connections mid-job.

Every Ledger method is one short transaction. When the database goes away (a PostgreSQL
restart, a failover, a network blip), the transaction fails with an OperationalError and
is rolled back; the engine's pool_pre_ping replaces dead pooled connections. Running the
whole method again once the server answers is then safe, so `retrying` does that, with
bounded exponential backoff, for errors that say "connection lost / refused / server
starting or shutting down" — not for a constraint violation or a bad query, which would
fail again the same way.

The one unsafe instant is a commit whose acknowledgement is lost: the retry then repeats
it. Ledger writes are updates to a row (idempotent) except the insert of a new attempt
row, which a repeat would duplicate; that needs the server to die between committing and
answering, and costs one extra attempt row in the history, nothing more.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

# Seconds a ledger call keeps retrying before it gives up and raises: a PostgreSQL
# restart takes a few seconds, a failover up to a minute or two.
DEFAULT_BUDGET_S = 180.0
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
_local = threading.local()  # per thread: the driver's heartbeat thread shares the Ledger

_TRANSIENT = (
    "server closed the connection",
    "connection refused",
    "could not connect",
    "connection to server",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "connection already closed",
    "ssl syscall error",
    "ssl connection has been closed",
    "connection timed out",
    "no connection to the server",
    "cannot connect now",
    "database is locked",  # SQLite under heavy write contention, past busy_timeout
    "disk i/o error",  # SQLite WAL: a reader racing another process's checkpoint
)


def is_transient(e: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(e, DBAPIError) and e.connection_invalidated:
        return True
    if not isinstance(e, OperationalError | InterfaceError):
        return False
    text = str(getattr(e, "orig", None) or e).lower()
    return any(s in text for s in _TRANSIENT)


def budget_s() -> float:
    try:
        return max(0.0, float(os.environ.get("ORCH_LEDGER_RETRY_S", DEFAULT_BUDGET_S)))
    except ValueError:
        return DEFAULT_BUDGET_S


def retrying(method: F) -> F:
    """Run a Ledger method again while its database is unreachable, up to budget_s().
    The ledger's `on_wait` (if set) hears what the driver is waiting for, and None after."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_local, "active", False):  # a nested call: the outer one retries
            return method(self, *args, **kwargs)
        deadline, tries = time.monotonic() + budget_s(), 0
        waiting = False
        _local.active = True
        try:
            while True:
                try:
                    result = method(self, *args, **kwargs)
                    break
                except Exception as e:
                    if not is_transient(e) or time.monotonic() >= deadline:
                        raise
                    if not waiting:
                        waiting = True
                        log.warning("the ledger is unreachable (%s); retrying", _first_line(e))
                        _notify(self, f"the ledger at {_safe(self)} (reconnecting)")
                    time.sleep(_BACKOFF_S[min(tries, len(_BACKOFF_S) - 1)])
                    tries += 1
        finally:
            _local.active = False
        if waiting:
            log.warning("the ledger is back after %d retries", tries)
            _notify(self, None)
        return result

    return wrapper  # type: ignore[return-value]


def _notify(ledger: Any, what: str | None) -> None:
    callback = getattr(ledger, "on_wait", None)
    if callback is not None:
        try:
            callback(what)
        except Exception as e:  # a display hiccup must not break the ledger call
            log.debug("on_wait failed: %s", e)


def _safe(ledger: Any) -> str:
    try:
        return ledger.engine.url.render_as_string(hide_password=True)
    except Exception:
        return "its URL"


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e).strip()
    return (text.splitlines() or [type(e).__name__])[0][:160]
