"""Time left, from the ledger's progress (pure).

A trial's ETA is its remaining epochs times its latest epoch's compute time; a trial that
has not started borrows the epoch time of a trial of the same model, if any. The job's ETA
is bounded below by its longest remaining trial and by its remaining work spread over the
trials running now.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.ledger import TERMINAL, TrialView
from orchestrator.protocol import TrialState


def trial_eta_s(t: TrialView, peers: Sequence[TrialView] = ()) -> float | None:
    if t.state in TERMINAL:
        return 0.0
    epoch_s = t.epoch_time_s
    if epoch_s is None:
        same = [p.epoch_time_s for p in peers if p.model == t.model and p.epoch_time_s]
        epoch_s = sum(same) / len(same) if same else None
    if epoch_s is None:
        return None
    return max(t.epochs_total - t.epochs_done, 0) * epoch_s


def job_eta_s(trials: Sequence[TrialView]) -> float | None:
    etas = [trial_eta_s(t, trials) for t in trials]
    if any(e is None for e in etas):
        return None
    remaining = [e for e in etas if e]
    if not remaining:
        return 0.0
    running = max(1, sum(t.state == TrialState.RUNNING for t in trials))
    return max(max(remaining), sum(remaining) / running)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds <= 0:
        return "-"
    m, s = divmod(int(seconds + 0.5), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}" if h else (f"{m} min" if m else f"{s} s")
