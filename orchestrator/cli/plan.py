"""`orch plan JOB.toml`: every trial a submit would run, its hours on each acceptable GPU
type and its peak GPU memory, how far it already got, and the job's GPU-hours and makespan
under orch's launch order beside the lower bound. Reads the ledger and the checkpoint
directory; runs nothing and imports neither TensorFlow nor Ray (except with --address,
which asks a live cluster for its nodes).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import typer

from orchestrator.cli.text import plain
from orchestrator.config import Workspace, workspace
from orchestrator.errors import SpecError
from orchestrator.scheduling.adapters.address import given
from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.feasibility import (
    describe_request,
    fits,
    fits_trial,
    largest_by_type,
    memory_problem,
    nodes_from_types,
)
from orchestrator.scheduling.policy.gputypes import UNKNOWN, known, slug
from orchestrator.scheduling.policy.order import candidate_types, longest_first, reservations
from orchestrator.scheduling.policy.profile import profiling_round, worth_profiling
from orchestrator.scheduling.policy.simulate import lower_bound, simulate
from orchestrator.scheduling.rules import migration_rule, profile_share
from orchestrator.spec.cost import estimate, model_counts, peak_memory_gb
from orchestrator.spec.load import load_job
from orchestrator.spec.model import JobSpec, Resources, TrialSpec

FORMATS = ("table", "json", "csv")


@dataclass(frozen=True)
class PlanRow:
    trial: TrialSpec
    params: int | None
    hours: Mapping[str, float | None]  # GPU type -> estimated hours from scratch
    memory_gb: float | None  # peak per GPU
    done_epochs: int  # from the checkpoints; = epochs when the ledger says FINISHED
    finished: bool
    problem: str | None = None  # fits no acceptable GPU's memory

    @property
    def state(self) -> str:
        if self.finished:
            return "finished"
        if self.done_epochs:
            return f"epoch {self.done_epochs} of {self.trial.epochs}, resumable"
        return "new"

    @property
    def left(self) -> float:
        """Fraction of the training still to run."""
        return 0.0 if self.finished else 1 - self.done_epochs / self.trial.epochs

    @property
    def best_hours(self) -> float | None:
        known = [h for h in self.hours.values() if h is not None]
        return min(known) if known else None


@dataclass(frozen=True)
class Cluster:
    nodes: tuple[NodeInfo, ...]
    source: str  # "live cluster at ...", "[cluster] of the job file", or ""

    def describe(self) -> str:
        counts: dict[str, float] = {}
        for n in self.nodes:
            if n.gpus:
                counts[n.gpu_type] = counts.get(n.gpu_type, 0) + n.gpus
        return " + ".join(f"{g:g} x {t}" for t, g in sorted(counts.items())) or "CPUs only"


def plan(
    job_file: Path = typer.Argument(..., help="The job file (TOML).", show_default=False),
    format: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
    address: str | None = typer.Option(
        None, callback=given, help="Plan against a live Ray cluster (its nodes and GPU types)."
    ),
    gpu: list[str] = typer.Option(
        [], "--gpu", help="Also estimate on this GPU type (repeatable), e.g. 'A100'."
    ),
) -> None:
    """Show the trials a submit would run: hours per GPU type, peak memory, state, and the
    job's GPU-hours and makespan."""
    if format not in FORMATS:
        raise SpecError(f"--format: must be one of {', '.join(FORMATS)}. Received: {format!r}")
    if any(not g.strip() for g in gpu):
        raise SpecError("--gpu: must name a GPU type, e.g. --gpu A100. Received: --gpu=''")
    job = load_job(job_file)
    cluster = cluster_for(job, address)
    types = gpu_types(job, cluster, gpu)
    ws = workspace()
    learned = learned_ratios(ws)
    rows = plan_rows(job, ws, types, cluster, learned)
    summary = job_summary(job, rows, cluster, learned)
    if format == "json":
        typer.echo(json.dumps(as_json(job, types, rows, summary, cluster), indent=2))
    elif format == "csv":  # names from the job file: control characters shown, not sent
        typer.echo(plain(as_csv(types, rows), newlines=True), nl=False)
    else:
        typer.echo(plain(as_text(job, types, rows, summary, cluster), newlines=True))


def cluster_for(job: JobSpec, address: str | None) -> Cluster:
    """The nodes to plan on: a live cluster's, else the job's declared [cluster]."""
    if address:
        from orchestrator.scheduling.adapters.inventory import snapshot
        from orchestrator.scheduling.adapters.runtime import connect

        connect(address)
        return Cluster(tuple(snapshot()), f"live cluster at {address}")
    if job.cluster:
        return Cluster(
            tuple(nodes_from_types(job.cluster, declared=True)), "[cluster] of the job file"
        )
    return Cluster((), "")


def gpu_types(job: JobSpec, cluster: Cluster, extra: Sequence[str]) -> list[str]:
    """Columns: the cluster's GPU types; without a cluster, the types the trials name, else
    the GPU of their published reference (the seeds' GTX 1080 Ti); plus --gpu."""
    found = {n.gpu_type for n in cluster.nodes if n.gpus}
    if not cluster.nodes:
        for t in job.trials:
            found |= {slug(g) for g in t.resources.gpu_type}
        if not found:
            found = {slug(_reference_gpu(t)) for t in job.trials if t.reference.gpu}
    found |= {slug(g) for g in extra}
    if not found and any(t.resources.gpus for t in job.trials):
        found = {"gtx-1080-ti"}
    return sorted(found)


def _reference_gpu(trial: TrialSpec) -> str:
    """'GTX 1080 x 2' -> 'GTX 1080'."""
    return trial.reference.gpu.split(" x ")[0] if trial.reference.gpu else ""


def plan_rows(
    job: JobSpec,
    ws: Workspace,
    types: Sequence[str],
    cluster: Cluster,
    learned: Mapping[str, float] | None = None,
) -> list[PlanRow]:
    """`learned`: what orch measured, as ratios to the cost model by model family and GPU
    type (the ledger's, `learned_ratios`)."""
    finished = finished_keys(ws, job.name)
    progress = _checkpoint_epochs(ws, job.trials)
    rows = []
    for t in job.trials:
        counts = model_counts(t)
        hours: dict[str, float | None] = {}
        for gpu_type in types if t.resources.gpus else ["cpu"]:
            accepted = gpu_type in candidate_types(t, [_probe(gpu_type)])
            e = estimate(t, gpu_type, learned=learned) if accepted or gpu_type == "cpu" else None
            hours[gpu_type] = None if e is None else e.seconds / 3600
        memory = peak_memory_gb(t) if t.resources.gpus else None
        problem = memory_problem(t, cluster.nodes or [_probe(g) for g in types])
        if cluster.nodes and not any(fits(t.resources, n) for n in cluster.nodes):
            problem = (
                f'trial "{t.name}" asks for {describe_request(t.resources)}: no node of the '
                f"{cluster.source} can hold it (largest node of each type: "
                f"{largest_by_type(cluster.nodes)})."
            )
        done = min(progress.get(t.key, 0), t.epochs)
        params = None if counts is None else counts.params
        rows.append(PlanRow(t, params, hours, memory, done, t.key in finished, problem))
    return rows


def _probe(gpu_type: str) -> NodeInfo:
    """A node with plenty of everything but one GPU type: does the trial accept the type?"""
    return NodeInfo(gpu_type, gpu_type, cpus=1e6, gpus=1e6, memory_gb=1e9, gpu_type=gpu_type)


def _checkpoint_epochs(ws: Workspace, trials: Sequence[TrialSpec]) -> dict[str, int]:
    """Last checkpointed epoch per trial key; skipped when there is no storage at all."""
    if "://" not in ws.storage and not Path(ws.storage).exists():
        return {}
    from orchestrator.training.checkpoint import CheckpointStore

    out = {}
    for t in trials:
        epochs = CheckpointStore(ws.storage, t.key).epochs()
        if epochs:
            out[t.key] = epochs[-1]
    return out


def finished_keys(ws: Workspace, job: str) -> set[str]:
    """Keys the ledger marks FINISHED for this job; a missing SQLite file means none (and
    `plan` does not create one)."""
    if not _has_ledger(ws):
        return set()
    from orchestrator.ledger import Ledger

    return Ledger(ws.ledger_url).finished_keys(job)


def learned_ratios(ws: Workspace) -> dict[str, float]:
    """Measured / estimated epoch time by "family@gpu_type", as orch learned it from the
    epochs it ran (tracking/recorder.py); the same ratios `submit` orders by."""
    if not _has_ledger(ws):
        return {}
    from orchestrator.ledger import Ledger

    return Ledger(ws.ledger_url).speeds()


def _has_ledger(ws: Workspace) -> bool:
    url = ws.ledger_url
    return not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists()


@dataclass(frozen=True)
class Summary:
    gpu_hours: float  # every trial on its fastest acceptable type, x its GPUs
    gpu_hours_left: float
    unknown: int  # trials the cost model cannot size
    makespan_h: float | None  # under orch's longest-first order on the cluster
    fifo_h: float | None
    bound_h: float | None
    profile_h: float | None = None  # orch profiles the job first: the round's hours


def job_summary(
    job: JobSpec,
    rows: Sequence[PlanRow],
    cluster: Cluster,
    learned: Mapping[str, float] | None = None,
) -> Summary:
    total = left = 0.0
    unknown = 0
    for r in rows:
        if r.best_hours is None:
            unknown += 1
            continue
        share = r.trial.resources.gpus or 0.0
        total += r.best_hours * share
        left += r.best_hours * share * r.left
    if not cluster.nodes:
        return Summary(total, left, unknown, None, None, None)
    pending = [
        replace(r.trial, epochs=max(1, math.ceil(r.trial.epochs * r.left)))
        for r in rows
        if not r.finished and any(fits_trial(r.trial, n) for n in cluster.nodes)
    ]
    if not pending:  # all finished: nothing left; else nothing left fits a node
        done = all(r.finished for r in rows)
        return Summary(total, left, unknown, *((0.0, 0.0, 0.0) if done else (None,) * 3))

    memo: dict[tuple[int, str], float | None] = {}

    def duration(trial: TrialSpec, node: NodeInfo) -> float | None:
        gpu_type = node.gpu_type if trial.resources.gpus else "cpu"
        if (id(trial), gpu_type) not in memo:
            e = estimate(trial, gpu_type, learned=learned)
            memo[id(trial), gpu_type] = None if e is None else e.seconds
        return memo[id(trial), gpu_type]

    ordered = longest_first(pending, cluster.nodes, learned or {})
    # orch's policy: its order and its GPU-type affinity; the file order without affinity
    # (each trial on the first GPU that frees) for comparison.
    reserved = reservations(ordered, cluster.nodes, duration=duration)
    span = simulate(ordered, cluster.nodes, duration, reserved=reserved)
    fifo = simulate(pending, cluster.nodes, duration, reserved={})
    bound = lower_bound(pending, cluster.nodes, duration)
    # orch's profiling round (policy/profile.py), when the job gets one: on top of the plan
    profile = None
    if job.migrate:
        rule = migration_rule()
        limit, share = job.max_concurrent, profile_share()
        if worth_profiling(
            ordered, cluster.nodes, duration, rule, max_concurrent=limit, max_share=share
        ):
            profile = profiling_round(ordered, cluster.nodes, duration, rule) / 3600
    return Summary(total, left, unknown, span / 3600, fifo / 3600, bound / 3600, profile)


# ------------------------------------------------------------------------------ output


def as_text(
    job: JobSpec, types: Sequence[str], rows: Sequence[PlanRow], s: Summary, cluster: Cluster
) -> str:
    # A job of CPU-only trials on a cluster without GPU types still gets one hours column.
    columns = list(types) or ["cpu"]
    header = ["trial", "model", "params", "epochs", "batch", "resources", "GPU mem"]
    header += [f"h {t}" for t in columns] + ["key", "state"]
    cells = []
    for r in rows:
        t = r.trial
        hours = [hours_text(r.hours.get(g)) for g in columns]
        if not t.resources.gpus:
            hours = [hours_text(r.hours.get("cpu")) + " (CPU)"] + ["-"] * (len(columns) - 1)
        memory = (
            "-" if r.memory_gb is None else f"{r.memory_gb:.1f} GB" + ("!" if r.problem else "")
        )
        cells.append(
            [t.name, t.model, "-" if r.params is None else count(r.params), str(t.epochs),
             str(t.batch_size), resources_text(t.resources), memory, *hours, t.key, r.state]
        )  # fmt: skip
    lines = [f"job {job.name!r} ({job.path}): {len(job.trials)} trials in {len(job.groups)} groups"]
    lines.append(format_table(header, cells))
    lines.append(total_line(rows, s))
    if cluster.nodes and s.makespan_h is None:
        lines.append(
            f"makespan: no trial left to run fits a node of {cluster.describe()} "
            f"({cluster.source}); see below."
        )
    elif cluster.nodes:
        lines.append(makespan_line(s, cluster))
    else:
        lines.append(
            "makespan: no cluster to plan on; declare [[cluster.node_type]] in the job file or "
            "pass --address to plan against a running cluster."
        )
    lines += [f"refused before launch: {r.problem}" for r in rows if r.problem]
    lines.append(
        "h TYPE: estimated hours from scratch on that GPU type (a roofline of every layer on "
        "the type's published FLOP/s and bandwidth, the input pipeline on the trial's CPUs, "
        "the evaluation pass; corrected by what orch has measured). GPU mem: estimated peak "
        "per GPU (weights, gradients, optimizer slots, activations x batch)."
    )
    if assumed := assumed_types(columns):
        lines.append(
            f"{', '.join(assumed)}: not in orch's table of published GPU figures "
            f"(scheduling/policy/gputypes.py); hours assume a mid-range GPU ({UNKNOWN.fp32:g} "
            f"TFLOP/s, {UNKNOWN.bandwidth_gbs:g} GB/s, {UNKNOWN.memory_gb:g} GB). Check the "
            "spelling, or add the type's figures there."
        )
    return "\n".join(lines)


def assumed_types(types: Sequence[str]) -> list[str]:
    """Columns whose hours rest on the mid-range assumption, not on a published spec."""
    return [t for t in types if not known(t)]


def total_line(rows: Sequence[PlanRow], s: Summary) -> str:
    n_fin = sum(r.finished for r in rows)
    n_part = sum(1 for r in rows if not r.finished and r.done_epochs)
    text = (
        f"total: {len(rows)} trials: {n_fin} finished, {n_part} partly done, "
        f"{len(rows) - n_fin - n_part} new; {s.gpu_hours:.1f} GPU-hours on the fastest "
        f"acceptable types, {s.gpu_hours_left:.1f} left"
    )
    return text + (f" ({s.unknown} trials of unknown cost)" if s.unknown else "")


def makespan_line(s: Summary, cluster: Cluster) -> str:
    assert s.makespan_h is not None and s.bound_h is not None and s.fifo_h is not None
    ratio = f" ({s.makespan_h / s.bound_h:.2f} x)" if s.bound_h else ""
    line = (
        f"makespan on {cluster.describe()} ({cluster.source}): {s.makespan_h:.1f} h in orch's "
        f"longest-first order{ratio}, {s.fifo_h:.1f} h in file order; lower bound "
        f"{s.bound_h:.1f} h"
    )
    if s.profile_h is not None:
        line += (
            f"\nprofiling: orch first trains every trial 2 epochs to measure it, about "
            f"{duration_text(s.profile_h)} on top of the makespan, then orders the rest by "
            "the measured times (worth it when estimates are off: benchmarks/RESULTS.md, "
            "Makespan)"
        )
    return line


def duration_text(hours: float) -> str:
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"


def as_json(
    job: JobSpec, types: Sequence[str], rows: Sequence[PlanRow], s: Summary, cluster: Cluster
) -> dict:
    return {
        "job": job.name,
        "path": str(job.path),
        "gpu_types": list(types),
        "assumed_gpu_types": assumed_types(types),
        "cluster": {"source": cluster.source, "gpus": cluster.describe()}
        if cluster.nodes
        else None,
        "trials": [
            {
                "name": r.trial.name,
                "model": r.trial.model,
                "key": r.trial.key,
                "state": r.state,
                "params": r.params,
                "epochs": r.trial.epochs,
                "batch_size": r.trial.batch_size,
                "gpus": r.trial.resources.gpus,
                "cpus": r.trial.resources.cpus,
                "gpu_memory_gb": _round(r.memory_gb),
                "hours": {g: _round(h) for g, h in r.hours.items()},
                "problem": r.problem,
            }
            for r in rows
        ],
        "total": {
            "gpu_hours": _round(s.gpu_hours),
            "gpu_hours_left": _round(s.gpu_hours_left),
            "unknown_cost": s.unknown,
            "makespan_h": _round(s.makespan_h),
            "fifo_makespan_h": _round(s.fifo_h),
            "lower_bound_h": _round(s.bound_h),
            "profiling_h": _round(s.profile_h),
        },
    }


def as_csv(types: Sequence[str], rows: Sequence[PlanRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["trial", "model", "key", "state", "params", "epochs", "batch_size", "gpus", "cpus",
         "gpu_memory_gb", *[f"hours_{g}" for g in types], "hours_cpu"]
    )  # fmt: skip
    for r in rows:
        t = r.trial
        writer.writerow(
            [t.name, t.model, t.key, r.state, r.params, t.epochs, t.batch_size,
             t.resources.gpus, t.resources.cpus, _round(r.memory_gb),
             *[_round(r.hours.get(g)) for g in types], _round(r.hours.get("cpu"))]
        )  # fmt: skip
    return out.getvalue()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def hours_text(hours: float | None) -> str:
    if hours is None:
        return "-"
    return f"{hours:.2f}" if hours < 10 else f"{hours:.1f}"


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


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned columns: never truncated, fine in a pipe or a log."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    right = {h for h in header if h in ("params", "epochs", "batch", "GPU mem")}
    right |= {h for h in header if h.startswith("h ")}

    def line(cells: Sequence[str]) -> str:
        out = [
            c.rjust(w) if h in right else c.ljust(w)
            for c, w, h in zip(cells, widths, header, strict=True)
        ]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
