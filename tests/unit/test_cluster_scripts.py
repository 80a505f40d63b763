"""cluster/: the on-prem start scripts (run for real, with a fake nvidia-smi on PATH and
--dry-run) and the cluster launcher configs (validated by Ray's own launcher code)."""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.scheduling.policy.gputypes import LABEL, RESOURCE_PREFIX, slug

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
NVIDIA_SMI_NAMES = [
    "NVIDIA GeForce GTX 1080 Ti",
    "Tesla V100-SXM2-16GB",
    "NVIDIA A100-SXM4-80GB",
    "NVIDIA H100 80GB HBM3",
    "NVIDIA GeForce RTX 3090",
]

FAKE_SMI = """#!/bin/sh
# Answers only the query the scripts are meant to make.
if [ "$1" != "--query-gpu=name" ] || [ "$2" != "--format=csv,noheader" ]; then
  echo "fake nvidia-smi: unexpected arguments: $*" >&2; exit 64
fi
cat "$(dirname "$0")/gpus.txt"
exit "${FAKE_SMI_RC:-0}"
"""


def _fake_smi(tmp_path: Path, lines: list[str]) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    (bin_dir / "gpus.txt").write_text("".join(f"{ln}\n" for ln in lines))
    return bin_dir


def _run(script: str, *args: str, path_first: Path | None = None, **env: str):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "RAY_"))}
    if path_first is not None:
        full["PATH"] = f"{path_first}{os.pathsep}{full['PATH']}"
    full.update(env)
    return subprocess.run(
        ["bash", str(CLUSTER / script), *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
    )


def _parse(line: str) -> dict[str, object]:
    """The printed `ray start` line, parsed by Ray's own CLI definition (no node starts)."""
    from ray._private.label_utils import parse_node_labels_string, validate_node_labels
    from ray.scripts.scripts import start

    argv = shlex.split(line)
    assert argv[:2] == ["ray", "start"], line
    ctx = start.make_context("start", argv[2:])
    params = ctx.params
    labels = parse_node_labels_string(params["labels"])
    validate_node_labels(labels)
    resources = json.loads(params["resources"]) if params["resources"] != "{}" else {}
    return {**params, "labels": labels, "resources": resources}


def test_slug_rule_agrees_with_python() -> None:
    rng = random.Random(8)
    alphabet = "abcXYZ019 -_./()+ \t"
    fuzz = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) for _ in range(300)]
    prefixes = ["NVIDIA GeForce ", "nvidia_", "Tesla-", "GeForce GeForce ", "  NVIDIA  "]
    fuzz += [rng.choice(prefixes) + name for name in fuzz[:100]]
    names = [*NVIDIA_SMI_NAMES, "", "GeForce GTX 1080", "Quadro RTX 8000", "x" * 80, *fuzz]
    out = _run("gpu-type.sh", "--slug", *names)
    assert out.returncode == 0, out.stderr
    got = out.stdout.split("\n")[:-1]
    assert got == [slug(n) for n in names]
    assert got[:5] == [
        "gtx-1080-ti",
        "v100-sxm2-16gb",
        "a100-sxm4-80gb",
        "h100-80gb-hbm3",
        "rtx-3090",
    ]


@pytest.mark.parametrize("name", NVIDIA_SMI_NAMES)
@pytest.mark.parametrize("count", [1, 4, 8])
def test_worker_is_labelled_with_its_gpu_type(tmp_path: Path, name: str, count: int) -> None:
    bin_dir = _fake_smi(tmp_path, [name] * count)
    out = _run("start-worker.sh", "--dry-run", "--address", "10.0.0.10:6379", path_first=bin_dir)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1, out.stdout  # only the command, nothing else on stdout
    p = _parse(lines[0])
    assert p["address"] == "10.0.0.10:6379"
    assert p["labels"] == {LABEL: slug(name)}
    assert p["num_gpus"] == count
    assert p["resources"] == {f"{RESOURCE_PREFIX}{slug(name)}": count}
    assert p["metrics_export_port"] == 8080 and not p["head"]


def test_head_command_and_extra_ray_arguments(tmp_path: Path) -> None:
    bin_dir = _fake_smi(tmp_path, ["NVIDIA GeForce GTX 1080 Ti"] * 4)
    out = _run(
        "start-head.sh",
        "--dry-run",
        "--port",
        "6380",
        "--",
        "--block",
        path_first=bin_dir,
        ORCH_METRICS_PORT="9100",
    )
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line == (
        "ray start --head --port 6380 --dashboard-host 0.0.0.0 --metrics-export-port 9100 "
        "--labels orch/gpu-type=gtx-1080-ti --num-gpus 4 "
        """--resources '{"gpu_type:gtx-1080-ti": 4}' --block"""
    )
    p = _parse(line)
    assert p["head"] and p["port"] == 6380 and p["block"]


@pytest.mark.parametrize("case", ["no nvidia-smi", "no devices", "driver failure"])
def test_cpu_fallback(tmp_path: Path, case: str) -> None:
    if case == "no nvidia-smi":
        out = _run(
            "start-worker.sh",
            "--dry-run",
            "--address",
            "h:6379",
            NVIDIA_SMI=str(tmp_path / "absent" / "nvidia-smi"),
        )
    elif case == "no devices":
        out = _run(
            "start-worker.sh",
            "--dry-run",
            "--address",
            "h:6379",
            path_first=_fake_smi(tmp_path, []),
        )
    else:  # nvidia-smi present but the driver is not loaded
        bin_dir = _fake_smi(
            tmp_path,
            ["NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."],
        )
        out = _run(
            "start-worker.sh",
            "--dry-run",
            "--address",
            "h:6379",
            path_first=bin_dir,
            FAKE_SMI_RC="9",
        )
    assert out.returncode == 0, out.stderr
    assert "CPU node" in out.stderr
    p = _parse(out.stdout.strip())
    assert p["labels"] == {LABEL: "cpu"}
    assert p["num_gpus"] == 0 and p["resources"] == {}


def test_mixed_gpu_models_refused_unless_typed(tmp_path: Path) -> None:
    bin_dir = _fake_smi(tmp_path, ["NVIDIA GeForce GTX 1080 Ti", "NVIDIA GeForce RTX 3090"])
    out = _run("start-worker.sh", "--dry-run", "--address", "h:6379", path_first=bin_dir)
    assert out.returncode == 2 and "ORCH_GPU_TYPE" in out.stderr and not out.stdout
    out = _run(
        "start-worker.sh",
        "--dry-run",
        "--address",
        "h:6379",
        path_first=bin_dir,
        ORCH_GPU_TYPE="NVIDIA GeForce RTX 3090",
        ORCH_NUM_GPUS="1",
    )
    p = _parse(out.stdout.strip())
    assert p["labels"] == {LABEL: "rtx-3090"} and p["num_gpus"] == 1


def test_worker_needs_an_address(tmp_path: Path) -> None:
    out = _run("start-worker.sh", "--dry-run", path_first=_fake_smi(tmp_path, []))
    assert out.returncode == 2 and "RAY_HEAD_ADDRESS" in out.stderr
    out = _run("start-worker.sh", "--dry-run", "--bogus", path_first=_fake_smi(tmp_path, []))
    assert out.returncode == 2 and "unknown argument" in out.stderr


def test_gpu_type_reports_this_node(tmp_path: Path) -> None:
    out = _run("gpu-type.sh", path_first=_fake_smi(tmp_path, ["Tesla V100-SXM2-16GB"] * 8))
    assert out.stdout == "v100-sxm2-16gb 8\n"


# -- launcher configs -----------------------------------------------------------------------
def _launcher(name: str) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((CLUSTER / name).read_text())
    prepared = prepare_config(raw)  # what `ray up` does before touching any machine
    validate_config(prepared)
    return prepared


def test_launcher_node_types_carry_gpu_type() -> None:
    from ray._private.label_utils import validate_node_labels

    cfg = _launcher("launcher.yaml")
    types = cfg["available_node_types"]
    gpu_types = {n: t for n, t in types.items() if t["resources"].get("GPU")}
    assert sorted(t["resources"]["GPU"] for t in gpu_types.values()) == [4, 8]
    for name, t in types.items():
        validate_node_labels(t["labels"])
        label = t["labels"][LABEL]
        gpus = t["resources"].get("GPU", 0)
        typed = {k: v for k, v in t["resources"].items() if k.startswith(RESOURCE_PREFIX)}
        if gpus:
            assert typed == {f"{RESOURCE_PREFIX}{label}": gpus}, name
            assert label != "cpu"
        else:
            assert typed == {} and label == "cpu", name
    # The declared slug is what the start script derives from the instance's GPU name.
    smi_names = {"g4dn.12xlarge": "Tesla T4", "p3.16xlarge": "Tesla V100-SXM2-16GB"}
    for t in gpu_types.values():
        assert t["labels"][LABEL] == slug(smi_names[t["node_config"]["InstanceType"]])


@pytest.mark.parametrize("name", ["launcher.yaml", "onprem.yaml"])
def test_launcher_starts_nodes_with_the_scripts(name: str) -> None:
    cfg = _launcher(name)
    head = " ".join(cfg["head_start_ray_commands"])
    worker = " ".join(cfg["worker_start_ray_commands"])
    assert "cluster/start-head.sh" in head and "cluster/start-worker.sh" in worker
    assert "$RAY_HEAD_IP:6379" in worker
    # the code, and the cluster token where start-head.sh / start-worker.sh find it
    assert cfg["file_mounts"] == {"~/orch": ".", "~/.ray/auth_token": "~/.ray/auth_token"}


def test_onprem_lists_machines() -> None:
    cfg = _launcher("onprem.yaml")
    assert cfg["provider"]["type"] == "local"
    assert cfg["provider"]["head_ip"] and len(cfg["provider"]["worker_ips"]) >= 2


# -- the cluster token (Ray 2.60 token authentication) ---------------------------------------
FAKE_RAY = """#!/bin/sh
# Records what `ray start` would get: its token settings and arguments.
echo "mode=${RAY_AUTH_MODE:-} path=${RAY_AUTH_TOKEN_PATH:-} token=${RAY_AUTH_TOKEN:-} args=$*"
"""


def _fake_ray(tmp_path: Path) -> str:
    ray = tmp_path / "fake-ray"
    ray.write_text(FAKE_RAY)
    ray.chmod(0o755)
    return str(ray)


def test_head_creates_the_token_once_and_says_how_to_share_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"HOME": str(home), "RAY": _fake_ray(tmp_path)}
    smi = _fake_smi(tmp_path, [])
    dry = _run("start-head.sh", "--dry-run", path_first=smi, **env)
    assert dry.returncode == 0 and len(dry.stdout.splitlines()) == 1
    assert "would be created" in dry.stderr and not (home / ".ray").exists()

    first = _run("start-head.sh", "--port", "6390", path_first=smi, **env)
    assert first.returncode == 0, first.stderr
    token_file = home / ".ray" / "auth_token"
    token = token_file.read_text()
    assert len(token) == 64 and int(token, 16) and token_file.stat().st_mode & 0o077 == 0
    assert f"mode=token path={token_file} token= args=start --head --port 6390" in first.stdout
    assert f"cluster token: {token_file} (created)" in first.stderr
    assert "start-worker.sh --address HEAD:6390 --token-file" in first.stderr
    assert "RAY_AUTH_TOKEN_PATH=COPY orch submit JOB.toml --address HEAD:6390" in first.stderr

    again = _run("start-head.sh", path_first=smi, **env)
    assert "(reused)" in again.stderr and token_file.read_text() == token

    own = tmp_path / "cluster.token"
    _run("start-head.sh", path_first=smi, RAY_AUTH_TOKEN_PATH=str(own), **env)
    assert own.read_text() != token and len(own.read_text()) == 64


def test_worker_joins_with_the_token_or_refuses(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home"), "RAY": _fake_ray(tmp_path)}
    smi = _fake_smi(tmp_path, ["Tesla V100-SXM2-16GB"])
    args = ("--address", "10.0.0.10:6379")
    out = _run("start-worker.sh", *args, path_first=smi, **env)
    assert out.returncode == 2 and not out.stdout
    assert "no cluster token" in out.stderr and "--token-file" in out.stderr

    copy = tmp_path / "token-copy"
    copy.write_text("f" * 64)
    out = _run("start-worker.sh", *args, "--token-file", str(copy), path_first=smi, **env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"mode=token path={copy} token= args=start --address")

    out = _run("start-worker.sh", *args, path_first=smi, RAY_AUTH_TOKEN="abc", **env)
    assert out.stdout.startswith("mode=token path= token=abc")
    out = _run(  # the option wins over RAY_AUTH_TOKEN (Ray would read that first)
        "start-worker.sh",
        *args,
        "--token-file",
        str(copy),
        path_first=smi,
        RAY_AUTH_TOKEN="x",
        **env,
    )
    assert out.stdout.startswith(f"mode=token path={copy} token= args=start")

    out = _run("start-worker.sh", *args, path_first=smi, RAY_AUTH_MODE="disabled", **env)
    assert out.returncode == 0 and out.stdout.startswith("mode=disabled path= token=")
