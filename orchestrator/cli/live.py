"""A rich live table of the running job: one line per trial, updated at every epoch.

It fits the terminal: trial names are never cut (two trials must stay tellable apart), so
when the table is too wide whole columns go, least useful first (`_DROP_ORDER`), and the
notes of a dropped note column move under the table. When validation is the test set (the
seeds' protocol, validation_size = 0) the two accuracies are one number: one column.
The display starts at the first trial event, so an error before any trial runs (e.g. no
node can hold a trial) is printed on its own, not under a half-drawn table.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from rich import box
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.render import console
from orchestrator.cli.text import safe
from orchestrator.protocol import FailureClass, Report, TrialEnd, TrialState
from orchestrator.spec.model import JobSpec

_STYLE = {
    TrialState.RUNNING: "cyan",
    TrialState.FINISHED: "green",
    TrialState.FAILED: "red",
    TrialState.DIVERGED: "red",
    TrialState.RETRYING: "yellow",
    TrialState.PENDING: "dim",
    TrialState.SKIPPED: "dim green",
    TrialState.CANCELLED: "magenta",
}


# A job with more trials shows this many rows, the most telling ones (running and retrying,
# then failed, then the next to run, file order within), and counts the others by state:
# rendering every row of a 10,000-trial grid at each event took seconds of the driver.
MAX_ROWS = 40
_RANK = {TrialState.RUNNING: 0, TrialState.RETRYING: 0, TrialState.FAILED: 1,
         TrialState.DIVERGED: 1, TrialState.PENDING: 2}  # fmt: skip


class LiveDisplay:
    """A trial-event sink (see scheduling/adapters/events.py) that renders progress."""

    def __init__(self, job: JobSpec, skipped: set[str]) -> None:
        self.job = job
        self.rows: dict[str, dict[str, Any]] = {
            t.key: {
                "state": TrialState.SKIPPED if t.key in skipped else TrialState.PENDING,
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
        # Validation on the test set (no held-out split): val acc == test acc, one column.
        self.val_is_test = all(t.data.validation_size == 0 for t in job.trials)
        # Rendered at every refresh, at the terminal's width then (it may be resized).
        self.live = Live(
            console=console, refresh_per_second=2, transient=False, get_renderable=self._render
        )
        self.started_live = False

    def __enter__(self) -> LiveDisplay:
        return self  # the live table starts at the first trial event (see the docstring)

    def __exit__(self, *exc: object) -> None:
        if self.started_live:
            self.live.update(self._render())
            self.live.__exit__(*exc)  # type: ignore[arg-type]

    def _start(self) -> None:
        if not self.started_live:
            self.started_live = True
            self.live.__enter__()

    def _update(self, key: str, **fields: Any) -> None:
        self.rows[key].update(fields)
        self._start()
        self.live.update(self._render())

    def trial_started(self, key: str) -> None:
        self._update(key, state=TrialState.RUNNING, msg="")

    def driver_waiting(self, what: str | None) -> None:
        """Trials keep training; the driver buffers their records until `what` is back."""
        self.waiting = what
        if self.started_live:
            self.live.update(self._render())

    def trial_result(self, key: str, report: Report) -> None:
        if isinstance(report, TrialEnd):  # its state and message come with trial_completed
            if report.last is None:
                return
            report = report.last  # the epoch it ended after (a divergence: loss nan)
        self._update(
            key,
            epoch=report.epochs_done,
            loss=report.loss,
            acc=report.val_accuracy,
            test=report.test_accuracy,
            time=float(report.train_time_s or 0.0),
        )

    def trial_completed(self, key: str, last: Report | None) -> None:
        if self.rows[key]["state"] == TrialState.FAILED:  # the driver failed it (infeasible)
            return
        if isinstance(last, TrialEnd):
            self._update(key, state=last.state, msg=last.message)
        else:
            self._update(key, state=TrialState.FINISHED)

    def trial_failed(
        self, key: str, message: str, *, will_retry: bool, failure_class: str = FailureClass.ERROR
    ) -> None:
        self._update(
            key, state=TrialState.RETRYING if will_retry else TrialState.FAILED, msg=message
        )

    def _render(self, width: int | None = None) -> Table:
        width = width or console.width
        elapsed = time.monotonic() - self.started
        columns = self._columns()
        trials, hidden = self._shown()
        cells = [self._cells(trial) for trial in trials]
        shown = _fit(columns, cells, width)
        t = Table(
            title=f"{safe(self.job.name)}: {len(self.job.trials)} trials, {elapsed:.0f} s",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
        )
        for name in shown:
            # A trial name folds onto a second line rather than being cut to "ResNe…".
            t.add_column(name, no_wrap=name != "trial", overflow="fold")
        for row in cells:
            t.add_row(*(row[name] for name in shown))
        notes = []
        if "note" not in shown:  # notes of a dropped column: under the table, in full
            notes += [
                f"{safe(tr.name)}: {row['note']}"
                for tr, row in zip(trials, cells, strict=True)
                if row["note"]
            ]
        if self.val_is_test:
            notes.append("validation set = test set (the seeds' protocol): acc is test accuracy")
        elif "acc" in shown:
            notes.append("acc: validation accuracy, test accuracy once a trial has finished")
        if hidden:
            notes.append(hidden)
        if self.waiting:
            notes.append(f"waiting for {escape(self.waiting)}; trials keep training")
        t.caption = "\n".join(notes) or None
        t.caption_justify = "left"
        return t

    def _shown(self) -> tuple[list[Any], str | None]:
        """The trials to draw, and (for a job over MAX_ROWS) what the others are."""
        trials = self.job.trials
        if len(trials) <= MAX_ROWS:
            return list(trials), None
        state = [self.rows[t.key]["state"] for t in trials]
        first = sorted(range(len(trials)), key=lambda i: (_RANK.get(state[i], 3), i))
        counts = Counter(state)
        summary = ", ".join(f"{n:,} {str(st).lower()}" for st, n in sorted(counts.items()))
        return [trials[i] for i in sorted(first[:MAX_ROWS])], (
            f"{MAX_ROWS} of {len(trials):,} trials shown (running, failed, next); all: {summary}"
        )

    def _columns(self) -> list[str]:
        accuracy = ["acc"] if self.val_is_test else ["val acc", "test acc"]
        return ["trial", "model", "state", "epoch", "loss", *accuracy, "compute", "note"]

    def _cells(self, trial: Any) -> dict[str, str]:
        r = self.rows[trial.key]
        st = r["state"]
        acc = r["test"] if r["test"] is not None else r["acc"]
        return {  # names and messages escaped: they come from job files and trials
            "trial": safe(trial.name),
            "model": safe(trial.model),
            "state": _styled(st),
            "epoch": f"{r['epoch']}/{trial.epochs}",
            "loss": _f(r["loss"], "{:.3f}"),
            "acc": _f(acc, "{:.2%}"),
            "val acc": _f(r["acc"], "{:.2%}"),
            "test acc": _f(r["test"], "{:.2%}"),
            "compute": _duration(r["time"]),
            "note": safe(r["msg"][:60]),
        }


# Least useful first: what goes when the terminal is narrow. trial, state, epoch and the
# accuracy stay; a trial's note moves under the table.
# "val+test" merges the two accuracy columns into one "acc" (validation until the test).
_DROP_ORDER = ("note", "model", "loss", "val+test", "compute")


def _styled(state: TrialState) -> str:
    """A state in its colour; one without a colour as plain text (an empty tag "[]" is
    not markup, and its closing "[/]" would make rich raise)."""
    style = _STYLE.get(state)
    return f"[{style}]{state}[/]" if style else safe(state)


def _fit(columns: list[str], cells: list[dict[str, str]], width: int) -> list[str]:
    """The columns to show at `width`: all if they fit, else without the least useful."""
    from rich.text import Text

    def natural(name: str) -> int:
        texts = [Text.from_markup(row[name]).cell_len for row in cells]
        return max([len(name), *texts])

    shown = list(columns)
    for name in (None, *_DROP_ORDER):
        if name == "val+test" and "val acc" in shown:
            at = shown.index("val acc")
            shown[at : at + 2] = ["acc"]
        if name in shown:
            shown.remove(name)
        # SIMPLE_HEAD without edges: a divider and 1 + 1 padding between columns.
        if sum(natural(c) for c in shown) + 3 * (len(shown) - 1) <= width:
            break
    return shown


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.0f} min"


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else fmt.format(v)
