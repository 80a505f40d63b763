"""MLflow writes that outlive a tracker outage: in order, retried, never failing a trial.

The recorder writes to MLflow from the driver, inside Ray Tune's event loop. When the
tracking server (or its database) goes away, a plain client call would raise into Tune —
failing the trial — or block the loop for minutes in MLflow's own HTTP retries while every
trial waits to report. The outbox stands between the two:

* while the tracker answers, each write runs at once, in the caller's thread (so nothing
  changes in the common case, and tests see their writes immediately);
* the first write that fails for a reason that looks like an outage (connection refused,
  timeout, database gone) goes into an ordered queue, and so does every write after it;
  a background thread retries the head of the queue with bounded exponential backoff
  until the tracker is back, then drains the queue in order;
* `waiting` says what the driver is waiting for (shown by `orch status` and the live
  display, through `on_wait`), and `flush()` at the end of the job waits for the queue
  to drain, so nothing is lost.

Exactly once: an epoch's metrics are logged at most once per step (MlflowStore.log_epoch
compares with the run's history, which is re-read after a failure, since a request that
failed on the client may have reached the server). Other metrics carry their step, and a
retried metric write skips the (key, step) pairs the run already has. Tags and run ends
are idempotent.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestrator.tracking.mlflow_store import MlflowStore

log = logging.getLogger(__name__)

Op = Callable[[MlflowStore, bool], None]  # (store, is_retry) -> None
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)  # then every 15 s
GIVE_UP_AFTER = 5  # tries, for errors that do not look like an outage (a bad value)

# MLflow's HTTP client retries a refused connection with exponential backoff for minutes
# before it raises; the outbox retries itself, so the driver hears of an outage at once.
_MLFLOW_HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def is_outage(e: BaseException) -> bool:
    """An error that says the tracker (or its database) is unreachable, not that the
    request was wrong: worth retrying for as long as it takes."""
    try:
        from sqlalchemy.exc import InterfaceError, OperationalError

        if isinstance(e, OperationalError | InterfaceError):
            return True
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        pass
    if isinstance(e, ConnectionError | TimeoutError | OSError):
        return True
    text = f"{type(e).__name__}: {e}"
    return any(
        s in text
        for s in (
            "Max retries exceeded",
            "Connection refused",
            "ConnectionError",
            "Connection aborted",
            "RemoteDisconnected",
            "timed out",
            "TEMPORARILY_UNAVAILABLE",
            "503",
            "502",
            "504",
            "could not connect to server",
            "server closed the connection",
            "terminating connection",
        )
    )


class Outbox:
    """An MlflowStore whose writes are queued and retried while the tracker is away.

    Reads (experiment_id, trial_run, job_run, client, ...) pass straight through: the
    driver makes them at the start of a job, before Tune runs anything.
    """

    def __init__(
        self,
        store: MlflowStore,
        on_wait: Callable[[str | None], None] | None = None,
        backoff_s: Sequence[float] = BACKOFF_S,
    ) -> None:
        if store.tracking_uri.startswith(("http://", "https://")):
            for k, v in _MLFLOW_HTTP_ENV.items():
                os.environ.setdefault(k, v)
        self.store = store
        self.on_wait = on_wait
        self.backoff_s = tuple(backoff_s)
        self._queue: collections.deque[_Item] = collections.deque()
        self._lock = threading.Condition()
        self._exec = threading.Lock()  # one MLflow write at a time, in order
        self._worker: threading.Thread | None = None
        self._draining = False  # a worker owns the queue (set and cleared under _lock)
        self._since: float | None = None  # wall time the outage was noticed
        self._error = ""
        self.waiting: str | None = None
        self.written = 0

    def __getattr__(self, name: str) -> Any:  # reads and anything else: the store itself
        return getattr(self.store, name)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    # -- the writes the recorder makes ----------------------------------------------------
    def log_epoch(self, run_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
        metrics = dict(metrics)

        def op(store: MlflowStore, retry: bool) -> None:
            if retry:  # the failed request may have reached the server: ask it
                store._last_step.pop(run_id, None)
            store.log_epoch(run_id, epoch, metrics)

        self.put(f"epoch {epoch} of run {run_id[:8]}", op)

    def log_final(self, run_id: str, step: int, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self.put(f"final metrics of run {run_id[:8]}", _metrics_once(run_id, batch))

    def log_metric(self, run_id: str, key: str, value: float, step: int) -> None:
        from mlflow.entities import Metric

        metric = Metric(key, float(value), int(time.time() * 1000), step)
        self.put(f"{key} of run {run_id[:8]}", _metrics_once(run_id, [metric]))

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        tags = dict(tags)
        self.put(f"tags of run {run_id[:8]}", lambda s, _r: s.set_tags(run_id, tags))

    def end_run(self, run_id: str, status: str) -> None:
        self.put(f"end of run {run_id[:8]}", lambda s, _r: s.end_run(run_id, status))

    def log_dict(self, run_id: str, obj: Any, path: str) -> None:
        self.put(f"{path} of run {run_id[:8]}", lambda s, _r: s.log_dict(run_id, obj, path))

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.put(f"{path} of run {run_id[:8]}", lambda s, _r: s.log_text(run_id, text, path))

    def log_artifact(self, run_id: str, local_path: str, folder: str | None = None) -> None:
        self.put(
            f"{local_path} of run {run_id[:8]}",
            lambda s, _r: s.log_artifact(run_id, local_path, folder),
        )

    # -- the queue ------------------------------------------------------------------------
    def put(self, what: str, op: Op) -> None:
        """Run `op` now if nothing is queued; else (or if it fails) queue it, in order."""
        with self._lock:
            if self._queue:
                self._queue.append(_Item(what, op))
                return
        with self._exec:
            with self._lock:
                if self._queue:  # the worker took over meanwhile
                    self._queue.append(_Item(what, op))
                    return
            try:
                op(self.store, False)
                self.written += 1
                return
            except Exception as e:
                if not is_outage(e):
                    log.warning("MLflow refused %s (%s); retrying", what, _short(e))
                self._note_outage(e)
                with self._lock:
                    self._queue.append(_Item(what, op, tried=True))
                    self._start_worker()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued write is done and reported (True), or timeout_s passed
        (False). It waits for the worker itself, not just an empty queue: the worker says
        "back" (on_wait(None)) after its last write, and a caller that reads `waiting`
        after flush() must see that."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            while self._queue or self._draining:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(timeout=1.0 if left is None else min(left, 1.0))
        return True

    def _start_worker(self) -> None:  # holds self._lock
        # A flag, not is_alive(): a worker that has seen the queue empty (under the lock)
        # and is returning would strand an item queued in that instant.
        if not self._draining:
            self._draining = True
            self._worker = threading.Thread(target=self._drain, name="orch-outbox", daemon=True)
            self._worker.start()

    def _drain(self) -> None:
        failures = 1  # the head of the queue has just failed, in put()
        while True:
            with self._lock:
                if not self._queue:
                    self._draining = False
                    self._lock.notify_all()
                    return
                item = self._queue[0]
            if failures:
                time.sleep(self.backoff_s[min(failures, len(self.backoff_s)) - 1])
            with self._exec:
                try:
                    item.op(self.store, item.tried)
                    done = True
                except Exception as e:
                    item.tried, done = True, False
                    failures += 1
                    if not is_outage(e) and failures >= GIVE_UP_AFTER:
                        log.error(
                            "MLflow refused %s %d times (%s); dropped", item.what, failures, e
                        )
                        done = True
                    else:
                        self._note_outage(e)
            if not done:
                continue
            failures = 0
            self.written += 1
            with self._lock:
                self._queue.popleft()
                left = len(self._queue)
                self._lock.notify_all()
            self._set_waiting(
                None
                if not left
                else f"MLflow at {self.store.tracking_uri} (back; recording {left} buffered "
                f"update{'s' if left != 1 else ''})"
            )

    def _note_outage(self, e: BaseException) -> None:
        if self._since is None:
            self._since = time.time()
            log.warning(
                "MLflow at %s is unreachable (%s); buffering its writes and retrying",
                self.store.tracking_uri,
                _short(e),
            )
        self._error = _short(e)
        self._set_waiting(self._describe())

    def _describe(self) -> str:
        since = time.strftime("%H:%M:%S", time.localtime(self._since or time.time()))
        n = len(self._queue) or 1
        return (
            f"MLflow at {self.store.tracking_uri} (unreachable since {since}; "
            f"{n} update{'s' if n != 1 else ''} buffered, retrying: {self._error})"
        )

    def _set_waiting(self, what: str | None) -> None:
        if what is None and self.waiting is not None:
            log.warning("MLflow at %s is back; buffered writes recorded", self.store.tracking_uri)
        if what is None or "(back;" in what:
            self._since = None
        self.waiting = what
        if self.on_wait is not None:
            try:
                self.on_wait(what)
            except Exception as e:  # a display or ledger hiccup must not stop the outbox
                log.debug("on_wait failed: %s", e)


class _Item:
    __slots__ = ("op", "tried", "what")

    def __init__(self, what: str, op: Op, tried: bool = False) -> None:
        self.what, self.op, self.tried = what, op, tried  # tried: it may have reached MLflow


def _metrics_once(run_id: str, metrics: list[Any]) -> Op:
    def op(store: MlflowStore, retry: bool) -> None:
        todo = metrics
        if retry:  # skip what a request that failed on our side still recorded
            have = {
                (m.key, h.step)
                for m in metrics
                for h in store.client.get_metric_history(run_id, m.key)
            }
            todo = [m for m in metrics if (m.key, m.step) not in have]
        if todo:
            store.client.log_batch(run_id, metrics=todo)

    return op


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:160]
