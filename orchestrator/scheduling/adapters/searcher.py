"""Hands trial keys to Ray Tune one at a time, in launch order: a Tune Searcher.

A `tune.grid_search` over the keys would do the same, but Tune expands a grid by
deep-copying the whole parameter space, key list included, for every variant: quadratic in
the grid's size (about 2 minutes before the first trial of a 10,000-trial grid). Here Tune
asks for a trial when it can queue one, and gets the next key; its cost per trial does not
grow with the grid.

The feeder also limits how many trials are live at once (the job's `max_concurrent`), so no
ConcurrencyLimiter wraps it, and a trial the driver gave up on (infeasible, never to start)
stops counting as live. Its state (keys not handed out yet, live trials) is saved with
Tune's experiment snapshot and restored with it, so a restored experiment neither repeats
nor loses a key. orch itself starts a new experiment on every submit and skips what the
ledger has finished.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Sequence
from typing import Any

from ray.tune.search import Searcher

# A trial's whole Tune config: its key, and its name for Tune's trial and folder names. The
# name travels in the config because Tune pickles its name creators into every trial's
# saved state: a creator that looked names up in a table of the whole grid made each trial's
# state as large as the grid (1.3 MB a trial at 10,000 trials).
KEY, NAME = "trial_key", "trial_name"


class KeyFeeder(Searcher):
    def __init__(
        self, trials: Sequence[tuple[str, str]], max_concurrent: int | None = None
    ) -> None:
        """trials: (key, name) in launch order."""
        super().__init__()
        self.queue: deque[tuple[str, str]] = deque(trials)
        self.max_concurrent = max_concurrent or None
        self.live: dict[str, str] = {}  # Tune trial id -> key, handed out and not ended
        self.released: set[str] = set()  # keys given up by the driver: not counted as live

    @property
    def exhausted(self) -> bool:
        """Every key has been handed to Tune."""
        return not self.queue

    @property
    def running(self) -> int:
        return sum(1 for k in self.live.values() if k not in self.released)

    # -- Searcher ------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[Any, Any] | None:
        if not self.queue:
            # Tune's end-of-search sentinel is a string; its own annotation says dict.
            return Searcher.FINISHED  # type: ignore[return-value]
        if self.max_concurrent is not None and self.running >= self.max_concurrent:
            return None  # Tune asks again on a later step
        key, name = self.queue.popleft()
        self.live[trial_id] = key
        return {KEY: key, NAME: name}

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        key = self.live.pop(trial_id, None)
        self.released.discard(key or "")

    def release(self, key: str) -> None:
        """The driver gave the trial up (it can never start): it no longer holds a slot
        of max_concurrent, though Tune keeps it PENDING."""
        if key in self.live.values():
            self.released.add(key)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.max_concurrent = max_concurrent
        return True  # the feeder limits concurrency itself

    # -- Tune's experiment snapshot ------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {
            "queue": list(self.queue),
            "max_concurrent": self.max_concurrent,
            "live": dict(self.live),
            "released": sorted(self.released),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.queue = deque((key, name) for key, name in state["queue"])
        self.max_concurrent = state["max_concurrent"]
        self.live = dict(state["live"])
        self.released = set(state["released"])

    def save(self, checkpoint_path: str) -> None:
        tmp = f"{checkpoint_path}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.get_state(), f)
        os.replace(tmp, checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            self.set_state(json.load(f))
