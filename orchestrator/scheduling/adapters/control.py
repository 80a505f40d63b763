"""Stop requests from the driver to trial processes, through the shared storage path.

Tune cannot be told "don't retry this one" or "end this pending trial" from a callback, so
the driver writes `{storage}/control/{trial_key}.json`; a trial process reads it when it
starts and after every epoch and ends cleanly (checkpoint kept). Used for cancel, for a
retry budget that is used up, and for trials that became infeasible. Storage must be
shared by every node anyway (checkpoints), so no new channel is needed. On an object store
(s3://...) a single PUT is atomic, so a reader sees a whole request or none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from orchestrator.protocol import FailureClass, StopRequest
from orchestrator.storage import is_uri, local_path, object_store


class Control:
    def __init__(self, storage: str | os.PathLike[str]) -> None:
        self.fs: Any = None
        if is_uri(storage):
            self.fs, root = object_store(str(storage))
            self.root = f"{root}/control"
        else:
            self.dir = local_path(storage) / "control"

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def request_stop(self, key: str, *, failure_class: FailureClass, reason: str) -> None:
        blob = json.dumps(StopRequest(failure_class, reason).to_dict())
        if self.fs is not None:
            self.fs.create_dir(self.root, recursive=True)
            with self.fs.open_output_stream(f"{self.root}/{key}.json") as f:
                f.write(blob.encode())
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self._path(key).with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(blob)
        os.replace(tmp, self._path(key))  # atomic: a reader sees all of it or nothing

    def stop_request(self, key: str) -> dict[str, Any] | None:
        try:
            if self.fs is not None:
                with self.fs.open_input_stream(f"{self.root}/{key}.json") as f:
                    return json.loads(f.readall())
            return json.loads(self._path(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def requested(self) -> set[str]:
        """The keys that have a stop request, in one listing of the folder."""
        if self.fs is not None:
            from pyarrow.fs import FileSelector

            infos = self.fs.get_file_info(FileSelector(self.root, allow_not_found=True))
            names = (i.base_name for i in infos)
        else:
            try:
                names = (e.name for e in os.scandir(self.dir))
            except FileNotFoundError:
                return set()
        # A writer's temporary file ends in .PID.tmp, not .json: never a half request.
        return {n[: -len(".json")] for n in names if n.endswith(".json")}

    def clear(self, key: str) -> None:
        if self.fs is not None:
            from pyarrow.fs import FileType

            path = f"{self.root}/{key}.json"
            if self.fs.get_file_info(path).type == FileType.File:
                self.fs.delete_file(path)
            return
        self._path(key).unlink(missing_ok=True)
