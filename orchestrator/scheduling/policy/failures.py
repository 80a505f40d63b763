"""Failure classes, and which of them count against a trial's retry budget (pure)."""

from __future__ import annotations

import re

from orchestrator.protocol import INFRASTRUCTURE, FailureClass

__all__ = ["INFRASTRUCTURE", "classify", "counts_against_budget"]

# The classes themselves live in the trial -> driver vocabulary (orchestrator/protocol.py);
# these names are the ones scheduling code has always imported.
NODE_LOST = FailureClass.NODE_LOST  # infrastructure: never counts against the budget
OOM = FailureClass.OOM
DIVERGED = FailureClass.DIVERGED  # deterministic: never retried
CODE_ERROR = FailureClass.CODE_ERROR  # deterministic: reported once, never retried
INFEASIBLE = FailureClass.INFEASIBLE  # no node can hold it
CANCELLED = FailureClass.CANCELLED
DRIVER_LOST = FailureClass.DRIVER_LOST  # infrastructure
TIMEOUT = FailureClass.TIMEOUT  # resources.timeout_s spent
ERROR = FailureClass.ERROR  # anything else that escaped the trial: retried within the budget

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
    """Class of a failure that reached Tune, from its error text."""
    if _OOM.search(message):
        return OOM
    if _NODE_LOST.search(message):
        return NODE_LOST
    return ERROR


def counts_against_budget(failure_class: str) -> bool:
    return failure_class not in INFRASTRUCTURE
