"""`orch plan JOB.toml`: every trial a submit would run, what it asks for and costs, and
how far it already got. Reads the ledger and the checkpoint directory; runs nothing and
imports neither TensorFlow nor Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import typer

from orchestrator.cli.text import plain
from orchestrator.config import Workspace, workspace
from orchestrator.spec.cost import model_counts, training_macs
from orchestrator.spec.load import load_job
from orchestrator.spec.model import JobSpec, Resources, TrialSpec

COLUMNS = ("trial", "model", "params", "epochs", "resources", "cost", "key", "state")
# One unit per table, the largest that keeps the biggest trial >= 1.
UNITS = (("PMAC", 1e15), ("TMAC", 1e12), ("GMAC", 1e9))


@dataclass(frozen=True)
class PlanRow:
    trial: TrialSpec
    params: str
    cost: float | None  # MAC, whole training
    done_epochs: int  # from the checkpoints; = epochs when the ledger says FINISHED
    finished: bool

    @property
    def state(self) -> str:
        if self.finished:
            return "finished"
        if self.done_epochs:
            return f"epoch {self.done_epochs} of {self.trial.epochs}, resumable"
        return "new"

    @property
    def remaining(self) -> float | None:
        if self.cost is None:
            return None
        return 0.0 if self.finished else self.cost * (1 - self.done_epochs / self.trial.epochs)

    def cells(self, unit: tuple[str, float]) -> tuple[str, ...]:
        t = self.trial
        return (
            t.name,
            t.model,
            self.params,
            str(t.epochs),
            resources_text(t.resources),
            in_unit(self.cost, unit),
            t.key,
            self.state,
        )


def plan(
    job_file: Path = typer.Argument(..., help="The job file (TOML).", show_default=False),
) -> None:
    """Show the trials a submit would run: resources, params, estimated cost, state."""
    job = load_job(job_file)
    ws = workspace()
    rows = plan_rows(job, ws)
    unit = pick_unit(rows)
    typer.echo(
        f"job {job.name!r} ({plain(job.path)}): {len(job.trials)} trials in "
        f"{len(job.groups)} groups"
    )
    header = tuple(f"cost ({unit[0]})" if c == "cost" else c for c in COLUMNS)
    # Names from the job file: control characters shown, never sent to the terminal.
    typer.echo(format_table(header, [tuple(map(plain, r.cells(unit))) for r in rows]))
    typer.echo(total_line(rows, unit))
    power = len(str(int(unit[1]))) - 1
    typer.echo(
        "params: model.count_params() of what the trial builds (the zoo's shape walk). "
        "cost: MACs/image x training images x epochs x 3 (forward + backward), "
        f"in {unit[0]} = 10^{power} multiply-accumulates (1 MAC = 2 FLOP)."
    )


def plan_rows(job: JobSpec, ws: Workspace) -> list[PlanRow]:
    from orchestrator.training.checkpoint import CheckpointStore

    finished = finished_keys(ws, job.name)
    rows = []
    for t in job.trials:
        counts = model_counts(t)
        params = "-" if counts is None else ("" if counts.exact else "~") + count(counts.params)
        epochs = CheckpointStore(ws.storage, t.key).epochs()
        done = min(epochs[-1], t.epochs) if epochs else 0
        macs = training_macs(t)
        rows.append(
            PlanRow(t, params, None if macs is None else float(macs), done, t.key in finished)
        )
    return rows


def finished_keys(ws: Workspace, job: str) -> set[str]:
    """Keys the ledger marks FINISHED for this job; a missing SQLite file means none (and
    `plan` does not create one)."""
    url = ws.ledger_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return set()
    from orchestrator.ledger import Ledger

    return Ledger(url).finished_keys(job)


def pick_unit(rows: Sequence[PlanRow]) -> tuple[str, float]:
    biggest = max((r.cost for r in rows if r.cost is not None), default=0.0)
    return next((u for u in UNITS if biggest >= u[1]), UNITS[-1])


def total_line(rows: Sequence[PlanRow], unit: tuple[str, float]) -> str:
    n_fin = sum(r.finished for r in rows)
    n_part = sum(1 for r in rows if not r.finished and r.done_epochs)
    costs = [r.cost for r in rows if r.cost is not None]
    left = [r.remaining for r in rows if r.remaining is not None]
    unknown = len(rows) - len(costs)
    text = (
        f"total: {len(rows)} trials: {n_fin} finished, {n_part} partly done, "
        f"{len(rows) - n_fin - n_part} new; cost {in_unit(sum(costs), unit)} {unit[0]}, "
        f"{in_unit(sum(left), unit)} {unit[0]} left"
    )
    return text + (f" ({unknown} trials of unknown cost)" if unknown else "")


def resources_text(r: Resources) -> str:
    parts = []
    if r.gpus:
        kind = "/".join(r.gpu_type) if r.gpu_type else "any"
        parts.append(f"{r.gpus:g} GPU ({kind})")
    parts.append(f"{r.cpus:g} CPU")
    if r.memory_gb:
        parts.append(f"{r.memory_gb:g} GB")
    return ", ".join(parts)


def count(n: int) -> str:
    """62006 -> '62.0k', 1742762 -> '1.74M'."""
    if n >= 1_000_000:
        return f"{n / 1e6:.3g}M"
    return f"{n / 1e3:.3g}k" if n >= 1_000 else str(n)


def in_unit(macs: float | None, unit: tuple[str, float]) -> str:
    if macs is None:
        return "-"
    value = macs / unit[1]
    return "0" if value == 0 else f"{value:.4g}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned columns: never truncated, fine in a pipe or a log."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    right = {h for h in header if h in ("params", "epochs") or h.startswith("cost")}

    def line(cells: Sequence[str]) -> str:
        out = [
            c.rjust(w) if h in right else c.ljust(w)
            for c, w, h in zip(cells, widths, header, strict=True)
        ]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
