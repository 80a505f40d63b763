"""Which failure class a trial's error text belongs to, and which classes count against its
retry budget (pure).

The classes themselves are the trial -> driver vocabulary (`FailureClass` in
orchestrator/protocol.py). The rules that map an error to one live here, outside the
scheduling and tracking packages, because the tuner's event callback, the recorder and the
metrics sink all apply them.
"""

from __future__ import annotations

import re

from orchestrator.protocol import MIGRATION_MARK, NOT_COUNTED, FailureClass

# A node SIGKILLed with its raylet reaches Tune as the trial actor's RPC failing: "The actor
# ... is unavailable: The actor is temporarily unavailable: RpcError: ... Socket closed"
# (the exception's class name is not in Tune's error file; seen with real `ray start` nodes).
_NODE_LOST = re.compile(
    r"NodeDiedError|ActorDiedError|RayActorError|WorkerCrashedError|ActorUnavailableError|"
    r"node .* (died|dead|was terminated)|The actor died|owner has exited|connection .* lost|"
    r"actor is (temporarily )?unavailable",
    re.IGNORECASE,
)
_OOM = re.compile(r"(?i:OutOfMemoryError|ResourceExhaustedError|out of memory)|\bOOM\b")


def classify(message: str) -> FailureClass:
    """Class of a failure that reached Tune, from its error text: a move to a faster GPU
    (not a failure), out of memory, a node lost, else an error retried within the budget."""
    if MIGRATION_MARK in message:
        return FailureClass.MIGRATED
    if _OOM.search(message):
        return FailureClass.OOM
    if _NODE_LOST.search(message):
        return FailureClass.NODE_LOST
    return FailureClass.ERROR


def counts_against_budget(failure_class: str) -> bool:
    """Infrastructure failures (a node or the driver lost) and moves to a faster GPU never
    use up a trial's retries."""
    return failure_class not in NOT_COUNTED
