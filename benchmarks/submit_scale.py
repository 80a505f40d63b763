"""`orch submit` of a large grid: seconds until the first trial runs, and the driver's peak
resident memory while the job goes on. Targets (issue 13 §7, 10,000 trials): first trial
< 60 s, driver RSS < 2 GB.

The grid: learning rate x weight decay x seeds (10 x 10 x trials/100) of tiny trials
(LeNet-5, one epoch on 64 digits). The driver runs for --timeout seconds (the whole
up-front phase, Tune's first trial objects, the first trials) and is then interrupted,
with its process group. The script samples the driver's RSS every 0.5 s and watches the
ledger for the first attempt and for ended ones.

--whole: the driver's memory through the whole job. Once the first trial runs, `orch
cancel` asks every trial to stop. The driver then ends each waiting trial itself, as
Tune hands it out, without a process (scheduling/adapters/withdraw.py): each still passes
through Tune (a Trial object, the searcher, the callbacks), the ledger and MLflow (its
run, its end), so all trials pass through the driver in minutes instead of hours. The
watch lasts until the driver exits (or --timeout).

--whole --processes: the same with the withdrawal turned off, so that each trial starts
its process (a Ray worker, Tune's imports) and reads its stop request there, as every
trial did before the withdrawal: the driver's memory per trial process, on 2 cores about
0.5 trials a second.

    python benchmarks/submit_scale.py [--trials 10000] [--timeout 600] [--whole [--processes]]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from orchestrator.ledger import TERMINAL

ORCH = str(Path(sys.executable).with_name("orch"))


def job_text(trials: int) -> str:
    axis = 10 if trials >= 100 else 1
    seeds = list(range(max(1, trials // (axis * axis))))
    lrs = ", ".join(f"{0.01 * (i + 1):.2f}" for i in range(axis))
    wds = ", ".join(f"{1e-5 * (i + 1):.0e}" for i in range(axis))
    return f"""
[job]
name = "submit-scale"
[defaults]
model = "lenet5"
dataset = "digits"
epochs = 1
batch_size = 32
data = {{ train_size = 64, test_size = 32 }}
seeds = {seeds}
resources = {{ cpus = 1 }}

[[grid]]
name = "tiny-lr{{recipe.lr}}-wd{{recipe.weight_decay}}"
[grid.axes]
"recipe.lr" = [{lrs}]
"recipe.weight_decay" = [{wds}]
"""


NO_WITHDRAW = """
from orchestrator.scheduling.adapters import withdraw
withdraw.Withdraw.__call__ = lambda self, controller: None
"""


def progress(ledger: Path) -> tuple[int, int]:
    """(attempts started, trials ended) so far. Read-only, through sqlite3: a reader that
    opened the file first (SQLAlchemy creates a missing file) saw no attempt until long
    after the driver had committed them, which made early runs of this benchmark report a
    first trial 40 s late or not at all. A trial ended before it started (withdrawn by the
    driver after the cancel) has no attempt, so ends are counted on the trials."""
    import sqlite3

    ended = ", ".join(f"'{s}'" for s in sorted(TERMINAL))
    try:
        db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=2)
        try:
            started = db.execute("select count(*) from attempts").fetchone()[0]
            done = db.execute(f"select count(*) from trials where state in ({ended})")
            return int(started), int(done.fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:  # not created yet
        return 0, 0


def tree_rss(proc: psutil.Process) -> int:
    """RSS of the driver process itself (Ray's own daemons are not the driver)."""
    try:
        return proc.memory_info().rss
    except psutil.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--whole",
        action="store_true",
        help="cancel after the first trial "
        "and watch the driver until every trial has passed through it",
    )
    parser.add_argument(
        "--processes",
        action="store_true",
        help="with --whole: every cancelled trial still starts its process (the driver's "
        "withdrawal of waiting trials turned off): the driver's memory per trial process",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp, "scale.toml")
        job.write_text(job_text(args.trials))
        home = Path(tmp, ".orch")
        env = {**os.environ, "ORCH_HOME": str(home), "ORCH_DASHBOARD": "0"}
        if args.processes:  # a sitecustomize in the driver that makes Withdraw a no-op
            Path(tmp, "sitecustomize.py").write_text(NO_WITHDRAW)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [tmp, env.get("PYTHONPATH")]))
        start = time.perf_counter()
        errors = open(Path(tmp, "stderr.txt"), "w")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen([ORCH, "submit", str(job)], env=env, stdout=subprocess.DEVNULL,
                                stderr=errors, start_new_session=True)  # fmt: skip
        driver = psutil.Process(proc.pid)
        first, peak, last, started, ended = None, 0, 0, 0, 0
        ledger = home / "orch.db"
        samples: list[tuple[float, int, int]] = []  # (s, ended, RSS) once a minute
        while proc.poll() is None and time.perf_counter() - start < args.timeout:
            last = tree_rss(driver) or last
            peak = max(peak, last)
            started, ended = progress(ledger)
            if first is None and started:
                first = time.perf_counter() - start
                if args.whole:  # every trial from now on stops as it starts
                    subprocess.run([ORCH, "cancel", "submit-scale"], env=env,
                                   capture_output=True, timeout=600, check=True)  # fmt: skip
            now = time.perf_counter() - start
            if not samples or now - samples[-1][0] >= 60:
                samples.append((now, ended, last))
            time.sleep(0.5)
        total = time.perf_counter() - start
        exited = proc.poll() is not None  # on its own, before the watch ended
        if proc.poll() is None:  # end the driver and the local Ray it started, by group
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        errors.close()
        tail = Path(tmp, "stderr.txt").read_text()[-1500:]
    print(f"{args.trials:,} trials that stop at once; {os.cpu_count()} cores, "
          f"1-min load {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    print("| measurement | value | target |")
    print("|---|---|---|")
    shown = "never" if first is None else f"{first:.0f} s"
    print(f"| first trial running after | {shown} | < 60 s |")
    print(f"| driver peak RSS | {peak / 2**30:.2f} GB | < 2 GB |")
    print(f"| driver RSS at the end | {last / 2**30:.2f} GB, {ended:,} trials ended | - |")
    print(f"| trial processes started | {started:,} | - |")
    how = f"driver exited by itself, code {proc.returncode}" if exited else "then interrupted"
    print(f"| observed for | {total:.0f} s ({how}) | - |")
    if args.whole:
        print("\n| s | trials ended | driver RSS, GB |\n|---|---|---|")
        for t, n, rss in samples:
            print(f"| {t:.0f} | {n:,} | {rss / 2**30:.2f} |")
    if first is None or (exited and not args.whole):
        print(f"\ndriver stderr (tail):\n{tail}")


if __name__ == "__main__":
    main()
