"""Errors a user can cause. The CLI prints them as one line and exits 2 (no traceback).

Every message names the place (file, trial, key path), the bad value and the fix, in the
Keras style: ``jobs/x.toml: trial "ResNet-20": lr: must be > 0. Received: lr=-0.1``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


class OrchestratorError(Exception):
    """Base class of every error orch reports to a user as a clean one-line message."""

    exit_code = 2

    def lines(self) -> list[str]:
        """What the CLI prints, one `error:` line each: one line, even when the message
        quotes a library's own that spans several (a tar or MLflow error, say). Errors that
        list several problems (a job file's, infeasible trials) give one line per problem."""
        return [_one_line(str(self))]


class SpecError(OrchestratorError):
    """A job file is malformed. Holds every problem found, not only the first."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

    def lines(self) -> list[str]:
        return [_one_line(p) for p in self.problems]


class UnknownModelError(OrchestratorError, KeyError):
    """A model name that the zoo does not know."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        super().__init__(f"unknown model {name!r}.{did_you_mean(name, known)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DatasetError(OrchestratorError):
    """A dataset is missing, truncated or corrupted."""


class InfeasibleError(OrchestratorError):
    """A trial asks for resources that no node of the cluster can provide. The message has
    a line per trial, and one on the cluster's largest nodes."""

    def lines(self) -> list[str]:
        return [line for line in str(self).splitlines() if line.strip()]


class DivergedError(OrchestratorError):
    """The training loss became NaN or infinite; retrying would diverge again."""

    def __init__(self, epoch: int, loss: float) -> None:
        self.epoch = epoch
        super().__init__(f"diverged at epoch {epoch}: loss={loss}")


class JobBusyError(OrchestratorError):
    """Another live driver is running this job; a second one would duplicate trials."""


class JobChangedError(OrchestratorError):
    """A job file's [job] name is already in the ledger with other trials."""


class LedgerError(OrchestratorError):
    """The ledger database cannot be opened or is inconsistent."""


def _one_line(message: str) -> str:
    return re.sub(r"[ \t]*[\r\n]+[ \t]*", " ", message).strip() or "error"


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str:
    """' Did you mean: a, b?' for close matches of `word`, or '' when none is close."""
    matches = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    return f" Did you mean: {', '.join(matches)}?" if matches else ""
