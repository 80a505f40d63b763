"""Where orch looks for dataset files, and the one error message that lists every place.

Search order: the explicit `data_dir`, then `$ORCH_DATA_DIR`, then the Keras cache
(`$KERAS_HOME/datasets`, default `~/.keras/datasets`), so archives a user already
downloaded with `keras.datasets.cifar10.load_data()` on another machine are found as-is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import DatasetError

ENV_DATA_DIR = "ORCH_DATA_DIR"


@dataclass(frozen=True)
class SearchRoot:
    """A directory to look in, and where it came from (for the error message)."""

    path: Path
    origin: str


def search_roots(data_dir: str | os.PathLike | None) -> list[SearchRoot]:
    roots = []
    if data_dir is not None:
        roots.append(SearchRoot(Path(data_dir).expanduser(), "data_dir"))
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        roots.append(SearchRoot(Path(env).expanduser(), f"${ENV_DATA_DIR}"))
    keras_home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    roots.append(SearchRoot(Path(keras_home).expanduser() / "datasets", "Keras cache"))
    return roots


def find(
    dataset: str,
    candidates: Sequence[str],
    data_dir: str | os.PathLike | None,
    how_to: str,
    beside: Sequence[str] = (),
) -> Path:
    """The first existing `root/candidate` (or `data_dir` itself when it names a candidate)
    that has every file named in `beside` next to it: a dataset read from several files
    (SVHN's train, test and extra) is read from one directory that holds them all.

    `candidates` are relative paths (a directory or a file). Raises DatasetError listing
    every path tried, in order (with the files missing beside it), and `how_to` get the
    files, when none is complete.
    """
    tried: list[str] = []

    def complete(path: Path, origin: str) -> bool:
        if not path.exists():
            tried.append(f"{path} ({origin})")
            return False
        lacking = [name for name in beside if not (path.parent / name).exists()]
        if lacking:
            tried.append(f"{path} ({origin}; {', '.join(lacking)} not beside it)")
        return not lacking

    if data_dir is not None:
        direct = Path(data_dir).expanduser()
        if direct.name in {Path(c).name for c in candidates} and complete(direct, "data_dir"):
            return direct
    for root in search_roots(data_dir):
        for candidate in candidates:
            if complete(root.path / candidate, root.origin):
                return root.path / candidate
    if ENV_DATA_DIR not in os.environ:
        tried.append(f"${ENV_DATA_DIR} (not set)")
    # A folder the user named that is not there is most likely the mistake: said first.
    named = [
        f"{root.origin} {root.path} {'is not a folder' if root.path.exists() else 'does not exist'}"
        for root in search_roots(data_dir)
        if root.origin != "Keras cache" and not root.path.is_dir()
    ]
    first = f" ({'; '.join(named)})" if named else ""
    raise DatasetError(
        f"dataset {dataset!r} not found{first}. Looked in: {'; '.join(tried)}. {how_to} "
        f"Put the files in one of those directories, or point orch at them: "
        f"${ENV_DATA_DIR}, `orch train --data-dir DIR`, or data.data_dir=DIR in the job file."
    )
