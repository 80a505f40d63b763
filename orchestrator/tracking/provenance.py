"""Provenance of a trial: what code, libraries, hardware stack and data produced a result.

All of it in one place, gathered once per trial process and logged as MLflow tags
`orch.prov.<key>` on the trial's run (the GPU name per epoch is already a tag/metric):

  orch, orch_commit, orch_dirty   orch's version; the git commit and whether the checkout
                                  had uncommitted changes, when orch runs from a checkout
  python, tensorflow, keras, ray, mlflow
  cuda, cudnn, driver             on a GPU: TensorFlow's CUDA / cuDNN build and the driver
  determinism                     seed, TF op determinism, XLA, precision, PYTHONHASHSEED
  data_sha256                     sha256 over the dataset files actually read

`differing` (pure) says which keys the runs of one table cell disagree on.

Hashing the 170 MB CIFAR-10 archive takes ~0.15 s from the page cache on a 2-core EPYC
(benchmarks/provenance_hash.py; longer from a cold disk); the result is cached beside the file in
`.<name>.sha256` keyed by size and mtime, so it is computed once per file and machine (a
read-only data folder just skips the cache).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from orchestrator.protocol import Tag

TAG_PREFIX = Tag.PROV_PREFIX
PACKAGES = ("tensorflow", "keras", "ray", "mlflow")
# The order the table and report list them in.
KEYS = (
    "orch",
    "orch_commit",
    "orch_dirty",
    "python",
    *PACKAGES,
    "cuda",
    "cudnn",
    "driver",
    "gpu",
    "determinism",
    "data_sha256",
)
# Short names for a narrow footnote.
LABELS = {"data_sha256": "data", "orch_commit": "commit", "orch_dirty": "dirty tree"}


# ------------------------------------------------------------------- software and code
def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def software() -> dict[str, str]:
    """orch, Python and library versions, from package metadata (imports nothing)."""
    out = {"orch": _version("orch"), "python": platform.python_version()}
    out.update({p: _version(p) for p in PACKAGES})
    out.update(git_state(Path(__file__).resolve().parents[2]))
    return out


def git_state(root: Path) -> dict[str, str]:
    """{"orch_commit", "orch_dirty"} when `root` is a git checkout (orch installed with
    pip install -e), else {} (a wheel has no commit to name)."""
    if not (root / ".git").exists():
        return {}

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    # Untracked files do not change what runs; modified tracked files may.
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"orch_commit": commit, "orch_dirty": "-" if status is None else str(bool(status))}


# ------------------------------------------------------------------- GPU stack
def gpu_stack(gpu_count: int) -> dict[str, str]:
    """CUDA and cuDNN as TensorFlow was built with them, and the NVIDIA driver; {} on CPU."""
    if gpu_count <= 0:
        return {}
    out: dict[str, str] = {}
    with contextlib.suppress(Exception):  # a TF without build info: say nothing
        import tensorflow as tf

        info = tf.sysconfig.get_build_info()
        out["cuda"] = str(info.get("cuda_version", "-"))
        out["cudnn"] = str(info.get("cudnn_version", "-"))
    out["driver"] = driver_version() or "-"
    return out


def driver_version() -> str | None:
    """The NVIDIA driver's version, from the kernel module, else nvidia-smi."""
    proc_file = Path("/proc/driver/nvidia/version")
    with contextlib.suppress(OSError):
        return parse_driver(proc_file.read_text())
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = proc.stdout.strip().splitlines()[:1]
    return first[0].strip() if proc.returncode == 0 and first else None


def parse_driver(text: str) -> str | None:
    """'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar ...' -> 550.54.15"""
    import re

    m = re.search(r"Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)", text)
    return m.group(1) if m else None


# ------------------------------------------------------------------- determinism
def determinism(*, seed: int, xla: bool, precision: str) -> str:
    """The settings that decide whether a rerun gives the same numbers, as one string."""
    op_det = "unknown"
    with contextlib.suppress(Exception):
        from tensorflow.python.framework import config as tf_config

        op_det = str(tf_config.is_op_determinism_enabled())
    if os.environ.get("TF_DETERMINISTIC_OPS", "").lower() in ("1", "true"):
        op_det = "True"
    parts = {
        "seed": seed,
        "op_determinism": op_det,
        "xla": xla,
        "precision": precision,
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "unset"),
    }
    return " ".join(f"{k}={v}" for k, v in parts.items())


# ------------------------------------------------------------------- data fingerprint
def file_sha256(path: Path) -> str:
    """sha256 of one file, cached beside it (`.<name>.sha256`, keyed by size and mtime)."""
    st = path.stat()
    cache = path.with_name(f".{path.name}.sha256")
    key = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        cached = json.loads(cache.read_text())
        if {k: cached[k] for k in key} == key:
            return str(cached["sha256"])
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    value = digest.hexdigest()
    with contextlib.suppress(OSError):  # a read-only data folder: no cache, still correct
        part = cache.with_name(f"{cache.name}.{os.getpid()}")
        part.write_text(json.dumps({**key, "sha256": value}))
        os.replace(part, cache)
    return value


def _files(path: Path) -> list[Path]:
    if path.is_dir():  # an extracted archive: its files, not the cache files beside them
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.endswith(".sha256"))
    return [path]


def data_fingerprint(paths: Iterable[str | os.PathLike[str]]) -> str | None:
    """One sha256 over the dataset files read (a folder: every file in it), independent of
    where they lie; None when nothing was read from files."""
    lines = []
    for root in map(Path, paths):
        for f in _files(root):
            name = f.relative_to(root).as_posix() if root.is_dir() else f.name
            lines.append(f"{file_sha256(f)}  {name}")
    if not lines:
        return None
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def arrays_fingerprint(arrays: Sequence[Any]) -> str:
    """sha256 of generated or bundled data (digits, synthetic): the arrays' bytes."""
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(a.tobytes())
    return digest.hexdigest()


# ------------------------------------------------------------------- the whole record
def collect(
    *,
    gpu_count: int,
    seed: int,
    xla: bool,
    precision: str,
    data_files: Sequence[str] = (),
    data_arrays: Sequence[Any] = (),
) -> dict[str, str]:
    """Everything above for one trial process, as flat strings (MLflow tag values)."""
    out = software()
    out.update(gpu_stack(gpu_count))
    out["determinism"] = determinism(seed=seed, xla=xla, precision=precision)
    sha = data_fingerprint(data_files) if data_files else None
    if sha is None and data_arrays:
        sha = arrays_fingerprint(data_arrays)
    if sha:
        out["data_sha256"] = sha
    return out


def tags(prov: Mapping[str, Any]) -> dict[str, str]:
    return {f"{TAG_PREFIX}{k}": str(v) for k, v in prov.items()}


def from_tags(run_tags: Mapping[str, str]) -> dict[str, str]:
    return {k.removeprefix(TAG_PREFIX): v for k, v in run_tags.items() if k.startswith(TAG_PREFIX)}


# ------------------------------------------------------------------- comparing runs (pure)
def differing(records: Sequence[Mapping[str, str]]) -> list[str]:
    """The keys (in KEYS order) whose values differ between runs that recorded them."""
    keys = {k for r in records for k in r}
    out = []
    for k in sorted(keys, key=lambda k: (KEYS.index(k) if k in KEYS else len(KEYS), k)):
        values = {r[k] for r in records if k in r and r[k] not in ("", "-")}
        if len(values) > 1:
            out.append(k)
    return out


def merged(records: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """One value per key for a cell: the common value, or 'a | b' when runs differ."""
    out: dict[str, str] = {}
    for k in KEYS + tuple(sorted({k for r in records for k in r} - set(KEYS))):
        values = list(dict.fromkeys(r[k] for r in records if r.get(k) not in (None, "")))
        if values:
            out[k] = " | ".join(values)
    return out


def short(key: str, value: str) -> str:
    """A value as a table cell shows it: commits and hashes cut to 12 characters."""
    if key in ("orch_commit", "data_sha256"):
        return " | ".join(v[:12] for v in value.split(" | "))
    return value
