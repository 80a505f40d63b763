"""Provenance: versions, commit, GPU stack, determinism and a cached sha256 of the data
files read; the table flags a cell whose runs differ, and `--format json` carries it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from orchestrator.report.formats import to_csv, to_json, to_markdown
from orchestrator.report.page import provenance_table
from orchestrator.report.records import RunRecord
from orchestrator.report.table import PROV_MARK, build_table
from orchestrator.tracking import provenance as prov
from tests.conftest import ROOT


def test_software_names_every_package_and_the_checkout() -> None:
    sw = prov.software()
    for key in ("orch", "python", "tensorflow", "keras", "ray", "mlflow"):
        assert sw[key] not in ("", "-"), key
    # orch runs from this checkout (pip install -e): its commit and whether it is dirty.
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert sw["orch_commit"] == head and sw["orch_dirty"] in ("True", "False")


def test_git_state_of_a_clean_and_a_dirty_checkout(tmp_path: Path) -> None:
    assert prov.git_state(tmp_path) == {}  # not a checkout (a wheel install): nothing
    who = {"NAME": "t", "EMAIL": "t@t"}
    env = {
        **os.environ,
        **{f"GIT_{r}_{k}": v for r in ("AUTHOR", "COMMITTER") for k, v in who.items()},
    }
    for cmd in (["init", "-q"], ["add", "f"], ["commit", "-q", "-m", "x"]):
        if cmd[0] == "add":
            (tmp_path / "f").write_text("1")
        subprocess.run(["git", "-C", str(tmp_path), *cmd], check=True, env=env)
    state = prov.git_state(tmp_path)
    assert len(state["orch_commit"]) == 40 and state["orch_dirty"] == "False"
    (tmp_path / "untracked").write_text("x")  # does not change what runs
    assert prov.git_state(tmp_path)["orch_dirty"] == "False"
    (tmp_path / "f").write_text("2")
    assert prov.git_state(tmp_path)["orch_dirty"] == "True"


def test_gpu_stack_only_on_a_gpu_and_the_driver_parsed() -> None:
    assert prov.gpu_stack(0) == {}
    text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024"
    assert prov.parse_driver(text) == "550.54.15"
    open_kernel = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release"
    assert prov.parse_driver(open_kernel) == "570.86.15"
    stack = prov.gpu_stack(1)  # TF's build info exists on this CPU machine too
    assert stack["cuda"] == "12.5.1" and stack["cudnn"] == "9" and "driver" in stack


def test_determinism_settings() -> None:
    text = prov.determinism(seed=3, xla=True, precision="mixed_float16")
    assert "seed=3" in text and "xla=True" in text and "precision=mixed_float16" in text
    assert "op_determinism=" in text and "PYTHONHASHSEED=" in text


def test_file_sha256_is_cached_beside_the_file_by_size_and_mtime(tmp_path: Path) -> None:
    import hashlib

    f = tmp_path / "cifar-10-python.tar.gz"
    f.write_bytes(b"a" * 1000)
    want = hashlib.sha256(b"a" * 1000).hexdigest()
    assert prov.file_sha256(f) == want
    cache = tmp_path / ".cifar-10-python.tar.gz.sha256"
    assert json.loads(cache.read_text())["sha256"] == want
    # Computed once: a cache entry that matches size and mtime is believed...
    entry = json.loads(cache.read_text())
    cache.write_text(json.dumps({**entry, "sha256": "from-cache"}))
    assert prov.file_sha256(f) == "from-cache"
    # ...and a changed file (size or mtime) is hashed again.
    f.write_bytes(b"b" * 1000)
    os.utime(f, ns=(entry["mtime_ns"] + 10**9, entry["mtime_ns"] + 10**9))
    assert prov.file_sha256(f) == hashlib.sha256(b"b" * 1000).hexdigest()


def test_data_fingerprint_of_files_and_folders(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "cifar-10-batches-py").mkdir(parents=True)
        (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"x" * 100)
    # Same files in another place: the same fingerprint (the cache files are not data).
    fa = prov.data_fingerprint([a / "cifar-10-batches-py"])
    assert fa == prov.data_fingerprint([b / "cifar-10-batches-py"])
    assert fa == prov.data_fingerprint([a / "cifar-10-batches-py"])  # after caching
    (b / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"y" * 100)
    assert fa != prov.data_fingerprint([b / "cifar-10-batches-py"])
    assert prov.data_fingerprint([]) is None


def _run(name: str, seed: int, **p: str) -> RunRecord:
    base = {"tensorflow": "2.21.0", "data_sha256": "ab" * 32, "orch": "0.1.0"}
    return RunRecord(
        run_id=f"{name}-{seed}",
        trial_key=f"k{seed}",
        name=f"{name}-s{seed}",
        model="resnet20",
        state="FINISHED",
        gpu=p.pop("gpu", "GTX 1080 Ti"),
        batch_size=128,
        epochs=200,
        epochs_done=200,
        params=274442,
        train_time_s=2640.0,
        test_accuracy=0.918,
        seed=seed,
        group=name,
        provenance={**base, **p},
    )


def test_a_cell_whose_runs_differ_is_flagged_everywhere() -> None:
    records = [
        _run("same", 0),
        _run("same", 1),
        _run("mixed", 0),
        _run("mixed", 1, tensorflow="2.20.0", gpu="A100", data_sha256="cd" * 32),
    ]
    same, mixed = build_table(records)
    assert same.provenance_differs == () and same.provenance["tensorflow"] == "2.21.0"
    assert mixed.provenance_differs == ("tensorflow", "gpu", "data_sha256")
    assert mixed.provenance["tensorflow"] == "2.21.0 | 2.20.0"
    assert mixed.cells()[0] == f"mixed {PROV_MARK}" and same.cells()[0] == "same"
    md = to_markdown([same, mixed])
    assert f"{PROV_MARK} mixed: its runs differ in tensorflow, gpu, data." in md
    doc = json.loads(to_json([same, mixed], "j"))
    assert doc["rows"][1]["provenance_differs"] == ["tensorflow", "gpu", "data_sha256"]
    assert doc["rows"][0]["provenance"]["data_sha256"] == "ab" * 32
    assert "provenance_differs" in to_csv([same, mixed]).splitlines()[0]
    page = provenance_table([same, mixed])
    assert "data" in page["columns"] and page["rows"][1]["differs"]
    cells = dict(zip(page["columns"], page["rows"][1]["cells"], strict=True))
    assert cells["data"] == {"text": "abababababab | cdcdcdcdcdcd", "differs": True}
    assert not cells["orch"]["differs"]
