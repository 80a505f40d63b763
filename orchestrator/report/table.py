"""build_table: RunRecords -> the seed README's benchmark table (pure; no MLflow here).

Columns as in cifar-10-cnn's README: network | GPU | params | batch size | epochs |
training time | accuracy (%), then n (finished runs), the published accuracy, the
difference, a reproduction verdict and a parameter-count check.

One row per grid cell: the runs of one cell that differ only in their seed share a row,
with accuracy as mean ± sample standard deviation (n - 1 in the denominator) over the
finished runs, as airbench reports it.

Reproduction verdict, against the published accuracy `ref` (percent):
- one finished run: "reproduced" if |acc - ref| <= noise_pp (default 0.3 points, the order
  of seed-to-seed spread of CIFAR-10 test accuracy), else "above"/"below" by the points;
- several: "reproduced" if |mean - ref| <= max(sigmas * std, noise_pp) (default sigmas 2),
  else "above"/"below"; the distance is given in standard deviations. The noise band is a
  floor because a spread measured from 2-3 seeds can be arbitrarily small.
Parameter check: within 2% of the published count -> "ok", else "params differ: ours vs ref".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import mean, stdev

from orchestrator.protocol import TrialState
from orchestrator.report.records import BROKEN, UNFINISHED, RunRecord
from orchestrator.report.speed import SpeedTable
from orchestrator.tracking import provenance as prov

COLUMNS = (
    "network",
    "GPU",
    "params",
    "batch size",
    "epochs",
    "training time",
    "accuracy (%)",
    "n",
    "reference (%)",
    "diff",
    "verdict",
    "params check",
)
# Columns of numbers (right-aligned in every format that aligns): params to diff.
NUMERIC_COLUMNS = frozenset(COLUMNS[COLUMNS.index("params") : COLUMNS.index("diff") + 1])
DEFAULT_NOISE_PP = 0.3  # percentage points of test accuracy; see the module docstring
DEFAULT_SIGMAS = 2.0
PARAMS_TOLERANCE = 0.02
MIXED_MARK = "†"  # the cell ran on more than one GPU type
PROV_MARK = "‡"  # the cell's runs differ in their provenance (versions, GPUs, data)
RAW_TIME_MARK = "*"  # asked to normalise time, but no measured speed ratio exists


@dataclass(frozen=True)
class Row:
    cell: str
    network: str
    model: str
    dataset: str
    state: TrialState  # FINISHED | RUNNING | PENDING | FAILED | DIVERGED | PARTIAL (done + failed)
    gpu: str
    mixed_hardware: bool
    params: int | None
    batch_size: int | None
    epochs: int | None
    train_time_s: float | None  # mean over finished runs (so far, while none has finished)
    time_note: str  # "" | "normalised" | "not normalised" | "so far" | "at failure"
    accuracy: float | None  # percent, mean over finished runs
    accuracy_std: float | None  # sample std; None with fewer than two runs
    n: int  # finished runs
    runs: int  # all runs of the cell
    progress: str  # what the unfinished or failed runs are doing, "" when all finished
    reference: float | None
    reference_params: int | None
    diff: float | None
    verdict: str
    params_check: str
    error: str | None = None
    run_ids: tuple[str, ...] = ()
    experiment_id: str = ""
    normalized_to: str | None = None
    reference_time_s: float | None = None  # published time (on the published GPU)
    provenance: dict[str, str] = field(default_factory=dict)  # per key: value, or "a | b"
    provenance_differs: tuple[str, ...] = ()  # keys the runs disagree on

    @property
    def verdict_kind(self) -> str:
        """reproduced | above | below | "" (for styling)."""
        return self.verdict.split(" ", 1)[0] if self.verdict else ""

    def cells(self) -> tuple[str, ...]:
        """The row as the README shows it: text per COLUMNS entry."""
        gpu = f"{self.gpu} {MIXED_MARK}" if self.mixed_hardware else self.gpu
        time = format_duration(self.train_time_s)
        if self.time_note == "not normalised":
            time += RAW_TIME_MARK
        elif self.time_note in ("so far", "at failure") and self.train_time_s is not None:
            time += f" {self.time_note}"
        verdict = self.verdict
        if self.n:
            accuracy = format_accuracy(self.accuracy, self.accuracy_std)
            if self.progress:
                verdict = f"{verdict}; {self.progress}" if verdict else self.progress
        else:
            accuracy = self.progress or "-"
        network = f"{self.network} {PROV_MARK}" if self.provenance_differs else self.network
        return (
            network,
            gpu,
            format_params(self.params),
            _str(self.batch_size),
            _str(self.epochs),
            time,
            accuracy,
            str(self.n) if self.n == self.runs else f"{self.n}/{self.runs}",
            "" if self.reference is None else f"{self.reference:.2f}",
            "" if self.diff is None else f"{self.diff:+.2f}",
            verdict,
            self.params_check,
        )


def build_table(
    records: Sequence[RunRecord],
    *,
    noise_pp: float = DEFAULT_NOISE_PP,
    sigmas: float = DEFAULT_SIGMAS,
    normalize_to: str | None = None,
    speeds: SpeedTable | None = None,
) -> list[Row]:
    """One row per grid cell, in job-file order (orch.position, else first start time)."""
    cells: dict[str, list[RunRecord]] = {}
    for r in records:
        cells.setdefault(r.cell, []).append(r)
    if normalize_to and speeds is None:
        speeds = SpeedTable.from_records(records)
    ordered = sorted(cells.values(), key=_order)
    return [_row(rs, noise_pp, sigmas, normalize_to, speeds) for rs in ordered]


def _order(runs: list[RunRecord]) -> tuple[int, float, int]:
    positions = [r.position for r in runs if r.position is not None]
    if positions:
        return (0, min(positions), 0)
    return (1, 0, min(r.start_time_ms for r in runs))


def _row(
    runs: list[RunRecord],
    noise_pp: float,
    sigmas: float,
    normalize_to: str | None,
    speeds: SpeedTable | None,
) -> Row:
    runs = sorted(runs, key=lambda r: (r.seed if r.seed is not None else -1, r.start_time_ms))
    first = runs[0]
    done = [r for r in runs if r.state == TrialState.FINISHED and r.test_accuracy is not None]
    accs = [r.test_accuracy * 100 for r in done if r.test_accuracy is not None]
    acc = mean(accs) if accs else None
    std = stdev(accs) if len(accs) >= 2 else None
    ref = _float(first.reference.get("accuracy"))
    ref_params = parse_count(first.reference.get("params"))
    params = next((r.params for r in done + runs if r.params), None)
    time_s, time_note = _time(runs, done, normalize_to, speeds)
    # Provenance of the runs that ran (a pending run has none); the GPU as the table shows it.
    records = [{**r.provenance, **({"gpu": r.gpu} if r.gpu else {})} for r in runs if r.provenance]
    return Row(
        cell=first.cell,
        network=first.cell,
        model=first.model,
        dataset=first.dataset,
        state=_state(runs, done),
        gpu=_hardware(done or runs),
        mixed_hardware=any(r.mixed_hardware for r in runs),
        params=params,
        batch_size=first.batch_size,
        epochs=first.epochs,
        train_time_s=time_s,
        time_note=time_note,
        accuracy=acc,
        accuracy_std=std,
        n=len(accs),
        runs=len(runs),
        progress=_progress(runs),
        reference=ref,
        reference_params=ref_params,
        diff=None if acc is None or ref is None else acc - ref,
        verdict=verdict(accs, ref, noise_pp=noise_pp, sigmas=sigmas),
        params_check=params_check(params, ref_params),
        error=next((r.error for r in runs if r.state in BROKEN and r.error), None),
        run_ids=tuple(r.run_id for r in runs),
        experiment_id=first.experiment_id,
        normalized_to=normalize_to,
        reference_time_s=parse_duration(first.reference.get("time")),
        provenance=prov.merged(records),
        provenance_differs=tuple(prov.differing(records)),
    )


def verdict(
    accs: Sequence[float],
    ref: float | None,
    *,
    noise_pp: float = DEFAULT_NOISE_PP,
    sigmas: float = DEFAULT_SIGMAS,
) -> str:
    """accs: test accuracies in percent of the finished runs of one cell."""
    if not accs or ref is None:
        return ""
    diff = mean(accs) - ref
    std = stdev(accs) if len(accs) >= 2 else 0.0
    # Judged on the difference as the table prints it (0.01 points): a row reading "+0.30"
    # is within a 0.30 band, whatever the third decimal (and 92.12 - 91.82 = 0.3000000004).
    if round(abs(diff), 2) <= max(sigmas * std, noise_pp) + 1e-9:
        word = "reproduced"
    else:
        word = "above" if diff > 0 else "below"
    if std > 0:
        return f"{word} ({diff / std:+.1f}σ)"
    return word if word == "reproduced" else f"{word} ({diff:+.2f} pts)"


def params_check(ours: int | None, ref: int | None) -> str:
    if ours is None or ref is None or ref <= 0:
        return ""
    rel = (ours - ref) / ref
    if abs(rel) <= PARAMS_TOLERANCE:
        return "ok"
    return f"params differ: {format_params(ours)} vs {format_params(ref)} ({rel:+.0%})"


def _state(runs: list[RunRecord], done: list[RunRecord]) -> TrialState:
    states = {r.state for r in runs}
    if states & {TrialState.RUNNING, TrialState.RETRYING}:
        return TrialState.RUNNING
    if TrialState.PENDING in states:
        return TrialState.PENDING
    if len(done) == len(runs):
        return TrialState.FINISHED
    if done:
        return TrialState.PARTIAL
    return TrialState.DIVERGED if states == {TrialState.DIVERGED} else TrialState.FAILED


def _progress(runs: list[RunRecord]) -> str:
    """'running: epoch 3/200', 'failed: OOM', '2 running: epoch 3-7/200; 1 failed: ...'."""
    parts: list[str] = []
    live = [r for r in runs if r.state in UNFINISHED]
    if live:
        word = (
            "retrying"
            if all(r.state == TrialState.RETRYING for r in live)
            else ("pending" if all(r.state == TrialState.PENDING for r in live) else "running")
        )
        lo, hi = min(r.epochs_done for r in live), max(r.epochs_done for r in live)
        span = str(lo) if lo == hi else f"{lo}-{hi}"
        count = f"{len(live)} " if len(live) > 1 else ""
        parts.append(f"{count}{word}: epoch {span}/{live[0].epochs or '?'}")
    for state in BROKEN:
        bad = [r for r in runs if r.state == state]
        if bad:
            count = f"{len(bad)} " if len(bad) > 1 else ""
            why = next((r.error for r in bad if r.error), None)
            parts.append(f"{count}{state.lower()}: {short_error(why)}")
    return "; ".join(parts)


def _hardware(runs: list[RunRecord]) -> str:
    seen: list[str] = []
    for r in runs:
        if r.gpu and r.gpu not in seen:
            seen.append(r.gpu)
    return ", ".join(seen) or "-"


def _time(
    runs: list[RunRecord],
    done: list[RunRecord],
    normalize_to: str | None,
    speeds: SpeedTable | None,
) -> tuple[float | None, str]:
    if not done:
        times = [r.train_time_s for r in runs if r.train_time_s]
        live = any(r.state in UNFINISHED for r in runs)
        return (max(times), "so far" if live else "at failure") if times else (None, "")
    times = [r.train_time_s for r in done if r.train_time_s is not None]
    if not times:
        return None, ""
    if not normalize_to or speeds is None:
        return mean(times), ""
    scaled = [
        None
        if r.mixed_hardware or not r.gpu or r.train_time_s is None
        else speeds.normalise(r.train_time_s, r.model, r.gpu, normalize_to)
        for r in done
    ]
    if any(s is None for s in scaled):
        return mean(times), "not normalised"
    return mean(s for s in scaled if s is not None), "normalised"


def footnotes(rows: Sequence[Row]) -> list[str]:
    """The markers used in `rows`, explained."""
    notes = []
    if any(r.mixed_hardware for r in rows):
        notes.append(
            f"{MIXED_MARK} ran on more than one GPU type (resumed elsewhere); "
            "its training time mixes their speeds."
        )
    for r in rows:
        if r.provenance_differs:
            what = ", ".join(prov.LABELS.get(k, k) for k in r.provenance_differs)
            notes.append(f"{PROV_MARK} {r.network}: its runs differ in {what}.")
    target = next((r.normalized_to for r in rows if r.normalized_to), None)
    if target:
        notes.append(f"Training time normalised to {target} with measured images/s ratios.")
        if any(r.time_note == "not normalised" for r in rows):
            notes.append(
                f"{RAW_TIME_MARK} no measured speed ratio to {target} for this "
                "model: time as measured on its own hardware."
            )
    return notes


_EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def short_error(error: str | None, limit: int = 60) -> str:
    """The line that names the error: the last exception line of a traceback, else the
    first line (a multi-line message's tail, e.g. a list of what was tried, says little)."""
    if not error or not error.strip():
        return "see MLflow"
    lines = [ln.strip() for ln in error.strip().splitlines() if ln.strip()]
    named = [ln for ln in lines if _EXCEPTION_LINE.match(ln)]
    line = named[-1] if named else lines[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def format_accuracy(acc: float | None, std: float | None) -> str:
    if acc is None:
        return "-"
    return f"{acc:.2f}" if std is None else f"{acc:.2f} ± {std:.2f}"


def format_params(n: int | None) -> str:
    """62006 -> '62k', 274442 -> '0.27M', 36497136 -> '36.5M' (the README's style)."""
    if n is None:
        return "-"
    if n < 100_000:
        return f"{n / 1000:.0f}k" if n >= 1000 else str(n)
    return f"{n / 1e6:.2f}M" if n < 10_000_000 else f"{n / 1e6:.1f}M"


def format_duration(seconds: float | None) -> str:
    """Like the README: '44 min', '1h40', '10h22'; seconds under a minute: '38 s'."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60}h{minutes % 60:02d}"


def parse_duration(text: str | None) -> float | None:
    """The README's times back to seconds: '30 min', '1h40', '10h22', '38 s', '2h'."""
    import re

    if not text:
        return None
    t = text.strip().lower().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)h(\d{1,2})?(?:min|m)?", t)
    if m:
        return float(m.group(1)) * 3600 + float(m.group(2) or 0) * 60
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(min|m|s)", t)
    if m:
        return float(m.group(1)) * (60 if m.group(2) != "s" else 1)
    return None


def parse_count(v: str | int | None) -> int | None:
    """'850000', '850000.0', '0.85M', '62k' -> int; anything else -> None."""
    if v is None or isinstance(v, int):
        return v
    text = str(v).strip().replace(",", "").replace("_", "")
    scale = {"k": 1e3, "K": 1e3, "M": 1e6, "m": 1e6}.get(text[-1:], 1.0)
    try:
        x = float(text[:-1] if scale != 1.0 else text) * scale
    except ValueError:
        return None
    return round(x) if math.isfinite(x) else None


def _float(v: str | None) -> float | None:
    try:
        x = float(v) if v not in (None, "") else None
    except ValueError:
        return None
    return x if x is None or math.isfinite(x) else None


def _str(v: int | None) -> str:
    return "-" if v is None else str(v)
