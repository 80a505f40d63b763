"""`orch status [JOB]`: jobs and their trials' states, from the ledger."""

from __future__ import annotations

import typer
from rich.table import Table

from orchestrator.cli.render import console
from orchestrator.config import workspace
from orchestrator.errors import OrchestratorError
from orchestrator.ledger import Ledger


def status(job: str = typer.Argument(None, help="Job name or file; all jobs if omitted.")) -> None:
    """Show jobs and the state of each trial."""
    from orchestrator.cli.table import resolve_job_name

    ledger = Ledger(workspace().ledger_url)
    if job is None:
        jobs = ledger.jobs()
        if not jobs:
            console.print("No jobs yet. Run `orch submit jobs/quickstart.toml`.")
            return
    else:
        name, _ = resolve_job_name(job)
        view = ledger.job(name)
        if view is None:
            raise OrchestratorError(f"no job named {name!r} in the ledger. See `orch status`.")
        jobs = [view]
    for j in jobs:
        counts: dict[str, int] = {}
        for t in j.trials:
            counts[t.state] = counts.get(t.state, 0) + 1
        summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        table = Table(title=f"job {j.name} [{j.state}]: {summary}", title_justify="left")
        for col in (
            "trial",
            "model",
            "state",
            "epoch",
            "val acc",
            "test acc",
            "GPU",
            "attempts",
            "key",
            "error",
        ):
            table.add_column(col)
        for t in j.trials:
            table.add_row(
                t.name,
                t.model,
                t.state,
                f"{t.epochs_done}/{t.epochs_total}",
                _pct(t.last_accuracy),
                _pct(t.test_accuracy),
                t.gpu or "-",
                str(t.attempts),
                t.key,
                (t.error or "")[:80],
            )
        console.print(table)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"
