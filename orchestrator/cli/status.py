"""`orch status [JOB]`: jobs and their trials' states, from the ledger (and Ray Jobs)."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.render import console
from orchestrator.cli.text import safe
from orchestrator.config import workspace
from orchestrator.ledger import JobView, Ledger
from orchestrator.ledger.lookup import find_job
from orchestrator.protocol import JobState
from orchestrator.scheduling.policy.eta import format_eta, job_eta_s, trial_eta_s


def status(job: str = typer.Argument(None, help="Job name or file; all jobs if omitted.")) -> None:
    """Show jobs and, per trial: state, node, GPU, epoch k/N, accuracy, ETA."""
    ledger = Ledger(workspace().ledger_url, create=False)  # a read creates no ledger
    if job is None:
        jobs = ledger.jobs()
        if not jobs:
            console.print("No jobs yet. Run `orch submit jobs/quickstart.toml`.")
            return
    else:
        jobs = [find_job(ledger, job)]
    for j in jobs:
        console.print(job_table(j))
        if j.waiting_for and j.state == JobState.RUNNING:
            console.print(f"  driver waiting for {escape(j.waiting_for)}")
        if j.ray_job_id:
            console.print(
                f"  Ray job {safe(j.ray_job_id)} at {safe(j.ray_address)}: "
                f"{safe(ray_job_status(j))}  (`orch logs {safe(j.name)}` for its output)"
            )


# Columns by priority: on a narrow terminal the last ones go first, so that each trial's
# name and state stay whole (a cut "tri…" / "FIN…" tells nothing apart). Errors that no
# longer fit in the table are printed under it, whole.
_PRIORITY = ("trial", "state", "epoch", "acc", "val acc", "test acc", "ETA", "GPU", "model",
             "tries", "node", "error")  # fmt: skip
_GAP = 3  # a column's padding and rule in rich's default box


def job_table(j: JobView, width: int | None = None) -> Group:
    """The job's title and a table of its trials that fits `width` columns (the console's
    by default), dropping columns by priority; errors left out are listed under it."""
    counts: dict[str, int] = {}
    for t in j.trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    driver = f", driver {j.owner}" if j.owner else ""
    # Names come from job files and a shared ledger: escaped (control codes, rich markup).
    title = (
        f"job {safe(j.name)} \\[{safe(j.state)}{safe(driver)}]: {safe(summary)}; "
        f"ETA {format_eta(job_eta_s(j.trials))}"
    )
    # One accuracy column when validation is the test set (the seeds' protocol): the
    # ledger's last validation accuracy then equals the test accuracy of every trial.
    same = all(t.test_accuracy is None or t.test_accuracy == t.last_accuracy for t in j.trials)
    cells: dict[str, list[str]] = {
        "trial": [safe(t.name) for t in j.trials],
        "model": [safe(t.model) for t in j.trials],
        "state": [safe(t.state) for t in j.trials],
        "node": [safe((t.node or "-")[:8]) for t in j.trials],
        "GPU": [safe(t.gpu or "-") for t in j.trials],
        "epoch": [f"{t.epochs_done}/{t.epochs_total}" for t in j.trials],
        **(
            {"acc": [_pct(t.last_accuracy) for t in j.trials]}
            if same
            else {
                "val acc": [_pct(t.last_accuracy) for t in j.trials],
                "test acc": [_pct(t.test_accuracy) for t in j.trials],
            }
        ),
        "ETA": [format_eta(trial_eta_s(t, j.trials)) for t in j.trials],
        "tries": [str(t.attempts) for t in j.trials],
        "error": [safe((t.error or "")[:80]) for t in j.trials],
    }
    if not any(cells["error"]):
        del cells["error"]
    room = console.width if width is None else width
    wanted = [c for c in _PRIORITY if c in cells]

    def needed(cols: list[str]) -> int:
        return sum(max([len(c), *(len(v) for v in cells[c])]) + _GAP for c in cols) + 1

    while len(wanted) > 2 and needed(wanted) > room:
        wanted.pop()
    table = Table(title=title, title_justify="left")
    order = [c for c in cells if c in wanted]  # the reading order, not the priority
    for col in order:
        table.add_column(col, no_wrap=col in ("trial", "state"))
    for i in range(len(j.trials)):
        table.add_row(*(cells[col][i] for col in order))
    parts: list[Any] = [table]
    if "error" in cells and "error" not in wanted:
        parts += [f"  {n}: {e}" for n, e in zip(cells["trial"], cells["error"], strict=True) if e]
    if same and "acc" in wanted and j.trials:
        parts.append("  acc: validation was the test set (the seeds' protocol)")
    return Group(*parts)


def ray_job_status(j: JobView) -> str:
    try:
        from orchestrator.scheduling.adapters.rayjobs import client

        # client() checks the address in bounded time: a silent head cannot hang status
        return str(client(j.ray_address or "").get_job_status(j.ray_job_id))
    except Exception as e:  # the head may be gone; the ledger still answers
        return f"unknown ({type(e).__name__})"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"
