"""Stop requests from the driver to trial processes, through the shared storage path.

Tune cannot be told "don't retry this one" or "end this pending trial" from a callback, so
the driver writes `{storage}/control/{trial_key}.json`; a trial process reads it when it
starts and after every epoch and ends cleanly (checkpoint kept). Used for cancel, for a
retry budget that is used up, and for trials that became infeasible. Storage must be
shared by every node anyway (checkpoints), so no new channel is needed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class Control:
    def __init__(self, storage: str | os.PathLike[str]) -> None:
        self.dir = Path(storage) / "control"

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def request_stop(self, key: str, *, failure_class: str, reason: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self._path(key).with_suffix(".tmp")
        tmp.write_text(json.dumps({"failure_class": failure_class, "reason": reason}))
        os.replace(tmp, self._path(key))  # atomic: a reader sees all of it or nothing

    def stop_request(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def clear(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
