"""A multi-node Ray cluster of real processes, started by the project's own scripts.

One head (CPU only) and two GPU workers on this machine, each `cluster/start-head.sh` /
`cluster/start-worker.sh ... -- --block` in its own process group, with its own
--temp-dir and ports, joined with the cluster token the head's script creates. The GPU
workers see a fake nvidia-smi (NVIDIA_SMI) listing two "NVIDIA GeForce GTX 1080 Ti" and
one "Tesla V100-SXM2-16GB": the scripts label them, Ray gives them logical GPUs. Nodes
are stopped by their own process group (SIGKILL for a crash): never `ray stop`, which
would end every Ray process on the machine.

Use the session fixture `real_cluster` (import it into a test module); a test that kills
nodes calls `heal()` afterwards, or the next test's `heal()` restarts what is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ORCH, ROOT

RAY = str(Path(sys.executable).parent / "ray")
LABEL = "orch/gpu-type"
WORKERS = {  # node name -> what its nvidia-smi lists
    "ti": ["NVIDIA GeForce GTX 1080 Ti"] * 2,
    "v100": ["Tesla V100-SXM2-16GB"],
}
GPU_TYPES = {"head": "cpu", "ti": "gtx-1080-ti", "v100": "v100-sxm2-16gb"}
FAKE_SMI = """#!/bin/sh
[ "$1" = "--query-gpu=name" ] || { echo "fake nvidia-smi: unexpected $*" >&2; exit 64; }
cat "$(dirname "$0")/gpus.txt"
"""
# Node death is noticed by the head's health checks (period x failure threshold). Faster
# than Ray's defaults (3 s x 5) so the fault tests take less time, with headroom for a
# loaded two-core machine: a raylet slow to answer must not be declared dead.
HEAD_ENV = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "4000",
    "RAY_health_check_failure_threshold": "5",
}
# `ray start` gives its new raylet a fixed 30 s to register with the GCS and exits when it
# has not (ray/_private/node.py), which happens on a loaded machine: a node whose start-up
# fails so is started again, this many times in all.
STARTS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_ports() -> list[str]:
    # Each node of a one-machine cluster needs its own agent and metrics ports (Ray's
    # defaults are fixed numbers, so the second node would collide with the first).
    return [
        "--dashboard-agent-listen-port",
        str(free_port()),
        "--dashboard-agent-grpc-port",
        str(free_port()),
        "--runtime-env-agent-port",
        str(free_port()),
    ]


@dataclass
class RayNode:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    log_from: int = 0  # where this start's lines begin in the log

    def start(self) -> None:
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: raylet, workers and all
                cwd=ROOT,
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def up(self) -> bool:
        """This start got through `ray start`'s start-up: the node is registered with the
        GCS (Ray prints the line once it is, then blocks)."""
        try:
            with self.log.open("rb") as f:
                f.seek(self.log_from)
                return b"Ray runtime started." in f.read()
        except OSError:
            return False

    def descendants(self) -> list[tuple[int, str]]:
        """(pid, args) of every process started under this node's `ray start`. Ray may put
        worker processes in process groups of their own, so the group is not enough."""
        if self.proc is None:
            return []
        out = subprocess.run(
            ["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True
        ).stdout
        children: dict[int, list[tuple[int, str]]] = {}
        for line in out.splitlines():
            pid, ppid, *rest = line.split(None, 2)
            children.setdefault(int(ppid), []).append((int(pid), rest[0] if rest else ""))
        found, todo = [], [self.proc.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.append(child)
                todo.append(child[0])
        return found

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 60) -> None:
        """Signals the node's whole process group and every process under it (SIGKILL: a
        crash, as when the machine loses power)."""
        if self.proc is None:
            return
        tree = self.descendants() if sig == signal.SIGKILL else []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        for pid, _ in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        if sig != signal.SIGKILL:  # whatever ignored the signal goes now
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


@dataclass
class RealCluster:
    root: Path
    port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)  # Ray Jobs API
    nodes: dict[str, RayNode] = field(default_factory=dict)
    head_env: dict[str, str] = field(default_factory=lambda: dict(HEAD_ENV))  # {}: Ray's own

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def token_file(self) -> Path:
        return self.root / "cluster.token"

    @property
    def storage(self) -> Path:
        return self.root / "storage"  # every node reaches it: they share this machine

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "ORCH_"))}
        env.update(RAY=RAY, ORCH_METRICS_PORT=str(free_port()), TF_CPP_MIN_LOG_LEVEL="2")
        env.update(ORCH_OFFLINE="1", PYTHONWARNINGS="ignore::DeprecationWarning")
        env["PYTHONUNBUFFERED"] = "1"  # `ray start`'s lines reach the log as it prints them
        return env

    def _ray_args(self, name: str) -> list[str]:
        temp = self.root / name
        temp.mkdir(exist_ok=True)
        return [
            "--block",
            "--temp-dir",
            str(temp),
            "--num-cpus",
            "1",
            "--object-store-memory",
            str(80 * 1024**2),
            *_node_ports(),
        ]

    def start_head(self) -> None:
        env = {**self._base_env(), **self.head_env, "NVIDIA_SMI": str(self.root / "absent")}
        env["RAY_AUTH_TOKEN_PATH"] = str(self.token_file)  # created by the script
        argv = ["bash", str(ROOT / "cluster" / "start-head.sh"), "--port", str(self.port), "--"]
        argv += [*self._ray_args("head"), "--dashboard-port", str(self.dashboard_port)]
        argv += ["--ray-client-server-port", str(free_port())]
        node = RayNode("head", argv, env, self.root / "head.log")
        self.nodes["head"] = node
        node.start()

    def start_worker(self, name: str) -> None:
        smi_dir = self.root / f"smi-{name}"
        smi_dir.mkdir(exist_ok=True)
        (smi_dir / "gpus.txt").write_text("".join(f"{g}\n" for g in WORKERS[name]))
        smi = smi_dir / "nvidia-smi"
        smi.write_text(FAKE_SMI)
        smi.chmod(0o755)
        env = {**self._base_env(), "NVIDIA_SMI": str(smi)}
        argv = ["bash", str(ROOT / "cluster" / "start-worker.sh"), "--address", self.address]
        argv += ["--token-file", str(self.token_file), "--", *self._ray_args(name)]
        node = RayNode(name, argv, env, self.root / f"{name}.log")
        self.nodes[name] = node
        node.start()

    def _launch(self, name: str) -> None:
        if name == "head":
            self.start_head()
        else:
            self.start_worker(name)

    def bring_up(self, names: list[str], timeout: float = 300) -> None:
        """Starts nodes `names` and waits until each `ray start` is through its start-up;
        one that exits during start-up is started again (STARTS in all)."""
        starts = dict.fromkeys(names, 1)
        for name in names:
            self._launch(name)

        def all_up() -> bool:
            for name in names:
                node = self.nodes[name]
                if node.alive:
                    continue
                if node.up or starts[name] >= STARTS:  # died after start-up, or every time
                    raise AssertionError(f"{name} exited:\n{_tail(node.log)}")
                node.kill()  # whatever its failed start left in its process group
                starts[name] += 1
                self._launch(name)
            return all(self.nodes[n].up for n in names)

        _wait(all_up, timeout, f"ray start of {names}")

    def start(self) -> None:
        self.bring_up(["head"])
        self.bring_up(list(WORKERS))
        self.wait_for_nodes(set(GPU_TYPES))

    def heal(self) -> None:
        """Restarts any node that is not running (after a fault test) and waits for all."""
        if not self.nodes["head"].alive:
            for n in self.nodes.values():  # workers of a dead head are gone for good
                n.kill()
            self.bring_up(["head"])
        self.bring_up([n for n in WORKERS if not self.nodes[n].alive])
        self.wait_for_nodes(set(GPU_TYPES))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.nodes[name].kill(sig)

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        """What a user's shell holds to drive this cluster: the token file only (orch sets
        RAY_AUTH_MODE itself), a workspace and the shared storage."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "ORCH_"))}
        env.update(
            RAY_AUTH_TOKEN_PATH=str(self.token_file),
            ORCH_HOME=str(home),
            ORCH_STORAGE=str(self.storage),
            ORCH_DASHBOARD="0",
            ORCH_OFFLINE="1",
            COLUMNS="200",
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        env.update(extra)
        return env

    def orch(
        self, *args: str, home: Path, timeout: float = 600, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ORCH, *args],
            capture_output=True,
            text=True,
            env=self.env(home, **extra),
            cwd=home.parent,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def popen_orch(self, *args: str, home: Path, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [ORCH, *args],
            text=True,
            env=self.env(home, **extra),
            cwd=home.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def trial_pids(self, name: str) -> list[int]:
        """PIDs of the trial processes (Tune's trial actors) running on node `name`: its
        Ray workers other than Ray's own agents and idle workers."""
        system = ("ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray::IDLE")
        return [
            pid
            for pid, args in self.nodes[name].descendants()
            if args.startswith("ray::") and not args.startswith(system)
        ]

    def node_table(self) -> list[dict[str, object]]:
        """Alive nodes as the GCS lists them (a client with the token, in a subprocess)."""
        code = (
            "import json, ray, sys\n"
            "ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
            "print('NODES=' + json.dumps([{'id': n['NodeID'], 'labels': n.get('Labels') or {},"
            " 'gpus': n['Resources'].get('GPU', 0)} for n in ray.nodes() if n['Alive']]))\n"
        )
        env = self.env(self.root / "probe", RAY_AUTH_MODE="token")
        out = subprocess.run(
            [sys.executable, "-c", code, self.address],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        # Ray may print its own lines after ours (a node dying as we ask): find ours.
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("NODES=")]
        if out.returncode != 0 or not lines:
            return []
        return json.loads(lines[-1].removeprefix("NODES="))

    def node_ids(self) -> dict[str, str]:
        """GPU type slug -> node id (each node of this cluster has a type of its own)."""
        return {str(n["labels"].get(LABEL)): str(n["id"]) for n in self.node_table()}  # type: ignore[union-attr]

    def wait_for_nodes(self, names: set[str], timeout: float = 180) -> dict[str, str]:
        want = {GPU_TYPES[n] for n in names}

        def ready() -> dict[str, str] | None:
            for name in names:
                node = self.nodes[name]
                if not node.alive:
                    raise AssertionError(f"{name} exited:\n{_tail(node.log)}")
            ids = self.node_ids()
            return ids if want <= set(ids) else None

        return _wait(ready, timeout, f"nodes {sorted(names)}")

    def shutdown(self) -> None:
        # At the end of the session nothing is checked any more: each node's process tree
        # is killed outright. A SIGTERM made each `ray start --block` wind its node down
        # for several seconds: ~24 s for the three, at the end of every test session.
        for node in reversed(list(self.nodes.values())):
            node.kill(signal.SIGKILL)


def _tail(p: Path, n: int = 3000) -> str:
    try:
        return p.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _wait(cond, timeout: float, what: str, every: float = 1.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := cond():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    # A short root: Ray's socket paths under --temp-dir must stay under 107 characters.
    root = Path(tempfile.mkdtemp(prefix="orch-rc-", dir="/tmp"))
    cluster = RealCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.shutdown()
        shutil.rmtree(root, ignore_errors=True)
