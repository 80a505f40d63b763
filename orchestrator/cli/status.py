"""`orch status [JOB]`: jobs and their trials' states, from the ledger (and Ray Jobs)."""

from __future__ import annotations

import typer
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


def job_table(j: JobView) -> Table:
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
    table = Table(title=title, title_justify="left")
    for col in (
        "trial",
        "model",
        "state",
        "node",
        "GPU",
        "epoch",
        "val acc",
        "test acc",
        "ETA",
        "tries",
        "error",
    ):
        table.add_column(col)
    for t in j.trials:
        table.add_row(
            safe(t.name),
            safe(t.model),
            safe(t.state),
            safe((t.node or "-")[:8]),
            safe(t.gpu or "-"),
            f"{t.epochs_done}/{t.epochs_total}",
            _pct(t.last_accuracy),
            _pct(t.test_accuracy),
            format_eta(trial_eta_s(t, j.trials)),
            str(t.attempts),
            safe((t.error or "")[:80]),
        )
    return table


def ray_job_status(j: JobView) -> str:
    try:
        from orchestrator.scheduling.adapters.rayjobs import client

        # client() checks the address in bounded time: a silent head cannot hang status
        return str(client(j.ray_address or "").get_job_status(j.ray_job_id))
    except Exception as e:  # the head may be gone; the ledger still answers
        return f"unknown ({type(e).__name__})"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"
