"""Makes `trial.update_resources` take effect on a trial that waits for its resources.

Tune 2.60 asks Ray for a trial's placement group when it queues the trial (orch lets up to
200 queue), and `trial.update_resources` on a queued trial changes only the trial's
attribute: Tune keeps waiting on the first request. So a trial that orch binds again while
it waits (its bound GPU type's last node was lost, a moved trial whose target other work
took: scheduling/adapters/placement.py) would wait for the old request, forever if no node
of that type comes back.

`Requeue` is Tune's FIFO scheduler plus one step before Tune picks what to start: any
pending trial whose request changed since Tune queued it has its queued request cancelled
and goes back to the head of the queue, so Tune asks Ray again with the new one. A trial
whose actor already has its resources is left alone (it is starting). Next, trials asked
to stop while they wait end there, unstarted (withdraw.py). It also lets orch
hold trials out of Tune's queue and order it (`Dispatch`): a profiled job's measured
trials wait there for the plan (scheduling/policy/profile.py).

It reaches into Tune's controller (private attributes of TuneController and of its actor
manager); Ray is pinned to 2.60 (pyproject.toml) and tests/integration/test_requeue.py
fails if Tune changes underneath.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ray.tune.schedulers import FIFOScheduler

from orchestrator.protocol import TuneStatus


class Dispatch(Protocol):
    """orch's say in what Tune queues (Placement.dispatch): the pending trials to keep out
    of Tune's queue for now; it may also reorder the queue and rebind trials in it."""

    def dispatch(self, controller: Any) -> set[Any]: ...


class Requeue(FIFOScheduler):
    """FIFO, and a waiting trial whose resources were updated is asked for again; with
    `orch` (Placement), the trials it holds back stay out of Tune's queue, and the queue
    keeps the order orch gives it."""

    def __init__(
        self, orch: Dispatch | None = None, withdraw: Callable[[Any], None] | None = None
    ) -> None:
        """`withdraw(controller)`: ends waiting trials that were asked to stop (withdraw.py)."""
        super().__init__()
        self.requeued = 0  # how many times a waiting trial was asked for again
        self.orch, self.withdraw = orch, withdraw

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        controller = tune_controller._tune_controller
        requeue_rebound(controller, self)
        if self.withdraw is not None:
            self.withdraw(controller)
        if self.orch is None:
            return super().choose_trial_to_run(tune_controller)
        held = self.orch.dispatch(controller)
        # Tune queues the trial chosen here, then those of this list in its order, right
        # after this call: the held ones leave it (they come back when orch plans them),
        # and the first is the list's own (FIFO would take Tune's creation order).
        queue = [t for t in controller._pending_trials_list if t not in held]
        controller._pending_trials_list = queue
        pending = controller._pending_trials
        chosen = next((t for t in queue if t in pending and t.status == TuneStatus.PENDING), None)
        if chosen is None and not held:
            return super().choose_trial_to_run(tune_controller)  # a paused trial, if any
        return chosen


def requeue_rebound(controller: Any, counter: Requeue | None = None) -> None:
    """Every pending trial whose placement group factory is not the one Tune filed it
    under (Tune files a pending trial by its request: `_resources_to_pending_trials`)."""
    by_request = controller._resources_to_pending_trials
    for trial in list(controller._pending_trials):
        current = trial.placement_group_factory
        if trial in by_request.get(current, ()):
            continue
        old = next((r for r, ts in by_request.items() if trial in ts), None)
        if not unqueue(controller, trial, old):
            continue  # it has its resources: let it start
        refile(controller, trial, old)
        # Back to the head of the queue: it was queued already, ahead of those behind it.
        queue = controller._pending_trials_list
        if trial in queue:
            queue.remove(trial)
        queue.insert(0, trial)
        if counter is not None:
            counter.requeued += 1


def unqueue(controller: Any, trial: Any, request: Any) -> bool:
    """Cancel Ray's request for a pending trial's actor (filed under `request`), unless the
    actor has started already: then False, and the trial is left alone."""
    actor = controller._trial_to_actor.get(trial)
    if actor is not None:
        if controller._actor_manager.is_actor_started(actor):
            return False
        del controller._trial_to_actor[trial]
        controller._actor_to_trial.pop(actor, None)
        controller._actor_manager.remove_actor(actor)  # cancels Ray's request
    if trial in controller._staged_trials:
        controller._staged_trials.remove(trial)
        if request is not None:
            controller._actor_cache.decrease_max(request)
    return True


def refile(controller: Any, trial: Any, old: Any) -> None:
    """File a pending trial under its current request, out of `old` (None: under none):
    Tune files pending trials by request (`_resources_to_pending_trials`)."""
    by_request = controller._resources_to_pending_trials
    if old is not None:
        by_request[old].discard(trial)
    by_request[trial.placement_group_factory].add(trial)
