"""MLflow runs for the trials still waiting, created in the background while the job runs.

`orch table` and the MLflow UI show a job from MLflow alone, so every trial gets its run,
pending ones included. A trial that starts gets its run on demand (`Recorder.run_id`, from
its first event); this thread creates the others. Creating them all before launch took
minutes on a 10,000-trial grid (one run, its params and its trial.json each), so it:
- begins once the first trial has started (or after `start_after_s`, when the first
  trials wait long for resources): the first trial waits for none of them;
- goes in launch order, so most trials find their run made when they start;
- works in batches, pausing after each as long as the batch took, so the driver's event
  loop, which shares the interpreter with it, keeps at least half of it.
It is a trial sink only to hear of the first start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from orchestrator.protocol import FailureClass, Report

log = logging.getLogger(__name__)


class RunPrefill(threading.Thread):
    def __init__(
        self,
        make_run: Callable[[str], object],
        keys: Sequence[str],
        *,
        batch: int = 50,
        start_after_s: float = 60.0,
    ) -> None:
        super().__init__(daemon=True, name="orch-runs")
        self.make_run, self.keys = make_run, list(keys)
        self.batch, self.start_after_s = batch, start_after_s
        self.first_started = threading.Event()
        self.stopped = threading.Event()
        self.created = 0

    def stop(self) -> None:
        """The job is over (or interrupted): trials that ran have their runs already."""
        self.stopped.set()
        if self.is_alive():
            self.join()

    def run(self) -> None:
        deadline = time.monotonic() + self.start_after_s
        while not self.first_started.is_set() and time.monotonic() < deadline:
            if self.stopped.wait(0.2):
                return
        for i in range(0, len(self.keys), self.batch):
            began = time.monotonic()
            for key in self.keys[i : i + self.batch]:
                if self.stopped.is_set():
                    return
                try:
                    self.make_run(key)
                except Exception:  # the tracker is down: each trial's events create it later
                    log.warning("creating MLflow runs ahead of their trials stopped", exc_info=True)
                    return
                self.created += 1
            if self.stopped.wait(time.monotonic() - began):
                return

    # -- trial sink: only the first start matters ----------------------------------------
    def trial_started(self, key: str) -> None:
        self.first_started.set()

    def trial_result(self, key: str, report: Report) -> None:
        pass

    def trial_completed(self, key: str, last: Report | None) -> None:
        pass

    def trial_failed(
        self,
        key: str,
        message: str,
        *,
        will_retry: bool,
        failure_class: FailureClass = FailureClass.ERROR,
    ) -> None:
        pass
