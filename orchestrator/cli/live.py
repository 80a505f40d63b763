"""A rich live table of the running job: one line per trial, updated at every epoch."""

from __future__ import annotations

import time
from typing import Any

from rich.live import Live
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.render import console
from orchestrator.cli.text import safe
from orchestrator.spec.model import JobSpec

_STYLE = {
    "RUNNING": "cyan",
    "FINISHED": "green",
    "FAILED": "red",
    "DIVERGED": "red",
    "RETRYING": "yellow",
    "PENDING": "dim",
    "SKIPPED": "dim green",
}


class LiveDisplay:
    """A trial-event sink (see scheduling/events.py) that renders progress."""

    def __init__(self, job: JobSpec, skipped: set[str]) -> None:
        self.job = job
        self.rows: dict[str, dict[str, Any]] = {
            t.key: {
                "state": "SKIPPED" if t.key in skipped else "PENDING",
                "epoch": 0,
                "loss": None,
                "acc": None,
                "test": None,
                "time": 0.0,
                "msg": "",
            }
            for t in job.trials
        }
        self.started = time.monotonic()
        self.dashboard: str | None = None  # set by submit once Ray is up
        self.waiting: str | None = None  # what the driver waits for (tracker/ledger outage)
        self.live = Live(self._render(), console=console, refresh_per_second=2, transient=False)

    def __enter__(self) -> LiveDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._render())
        self.live.__exit__(*exc)  # type: ignore[arg-type]

    def _update(self, key: str, **fields: Any) -> None:
        self.rows[key].update(fields)
        self.live.update(self._render())

    def trial_started(self, key: str) -> None:
        self._update(key, state="RUNNING", msg="")

    def driver_waiting(self, what: str | None) -> None:
        """Trials keep training; the driver buffers their records until `what` is back."""
        self.waiting = what
        self.live.update(self._render())

    def trial_result(self, key: str, result: dict[str, Any]) -> None:
        self._update(
            key,
            epoch=int(result.get("epochs_done", 0)),
            loss=result.get("loss"),
            acc=result.get("val_accuracy"),
            test=result.get("test_accuracy"),
            time=float(result.get("train_time_s", 0.0)),
        )

    def trial_completed(self, key: str, last: dict[str, Any]) -> None:
        if self.rows[key]["state"] == "FAILED":  # already failed by the driver (infeasible)
            return
        if last.get("diverged"):
            self._update(key, state="DIVERGED", msg=str(last.get("message", "")))
        elif last.get("failed"):
            self._update(key, state="FAILED", msg=str(last.get("message", "")))
        elif last.get("stopped"):
            cancelled = last.get("failure_class") == "cancelled"
            self._update(
                key, state="CANCELLED" if cancelled else "FAILED", msg=str(last.get("reason", ""))
            )
        else:
            self._update(key, state="FINISHED")

    def trial_failed(
        self, key: str, message: str, *, will_retry: bool, failure_class: str = "error"
    ) -> None:
        self._update(key, state="RETRYING" if will_retry else "FAILED", msg=message)

    def _render(self) -> Table:
        elapsed = time.monotonic() - self.started
        t = Table(
            title=f"{safe(self.job.name)}: {len(self.job.trials)} trials, {elapsed:.0f} s",
            title_justify="left",
        )
        for col in (
            "trial",
            "model",
            "state",
            "epoch",
            "loss",
            "val acc",
            "test acc",
            "compute",
            "note",
        ):
            t.add_column(col)
        for trial in self.job.trials:
            r = self.rows[trial.key]
            st = r["state"]
            t.add_row(  # names and messages escaped: they come from job files and trials
                safe(trial.name),
                safe(trial.model),
                f"[{_STYLE.get(st, '')}]{st}[/]",
                f"{r['epoch']}/{trial.epochs}",
                _f(r["loss"], "{:.3f}"),
                _f(r["acc"], "{:.2%}"),
                _f(r["test"], "{:.2%}"),
                f"{r['time']:.0f} s",
                safe(r["msg"][:60]),
            )
        if self.waiting:
            t.caption = f"waiting for {escape(self.waiting)}; trials keep training"
        return t


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else fmt.format(v)
