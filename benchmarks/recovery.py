"""Recovery from a worker node killed mid-epoch, on a real multi-node Ray cluster.

Starts a head and two GPU workers on this machine with cluster/start-head.sh and
cluster/start-worker.sh (the test harness tests/integration/real_cluster.py: logical GPUs,
a fake nvidia-smi, the cluster token), submits a one-trial job with `orch submit
--address`, and SIGKILLs the process group of the worker the trial runs on halfway through
an epoch. Prints, per run:
  detect   kill -> the driver records the attempt as failed (node_lost): Ray's node-death
           detection (GCS health checks: period x failure threshold) plus Tune noticing;
  relaunch kill -> the new attempt's process starts on the other node;
  trains   kill -> the new attempt trains again (its first epoch's end minus its length);
  lost     epochs of progress thrown away (progress at the kill - epoch resumed from).

    python benchmarks/recovery.py [RUNS] [--ray-defaults]

--ray-defaults keeps Ray's own health-check settings (3 s period, 5 failures) instead
of the test harness's faster ones (1 s, 5 failures).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.ledger import Ledger  # noqa: E402
from tests.integration.real_cluster import GPU_TYPES, RealCluster  # noqa: E402

JOB = """
[job]
name = "recovery-{i}"
[defaults]
dataset = "digits"
data = {{ train_size = 1400, test_size = 100 }}
epochs = 12
batch_size = 64
seed = 5
recipe = {{ lr = 0.05, augment = "none" }}
resources = {{ cpus = 1, gpus = 1 }}
[[trial]]
name = "survivor"
model = "resnet"
model_args = {{ depth = 8 }}
"""


def _poll(cond, timeout: float = 600, every: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if value := cond():
                return value
        except SystemExit:
            raise
        except Exception:  # the driver may be creating the database
            pass
        time.sleep(every)
    raise TimeoutError("no progress")


def one_run(cluster: RealCluster, work: Path, i: int) -> dict[str, float]:
    home = work / f"run{i}" / ".orch"
    home.parent.mkdir(parents=True)
    job = home.parent / "job.toml"
    job.write_text(JOB.format(i=i))
    ledger = Ledger(f"sqlite:///{home / 'orch.db'}")
    name = f"recovery-{i}"
    # storage of its own per run: the same trial (same key) must start from scratch each time
    storage = str(home.parent / "storage")
    driver = cluster.popen_orch(
        "submit", str(job), "--address", cluster.address, home=home, ORCH_STORAGE=storage
    )

    def trial():  # type: ignore[no-untyped-def]
        if driver.poll() is not None and driver.returncode != 0:
            raise SystemExit(f"the driver failed:\n{driver.communicate()[0][-3000:]}")
        view = ledger.job(name)
        return view.trials[0] if view else None

    # Wait for a completed epoch, then kill halfway through the next one.
    t = _poll(lambda: (x := trial()) and x.state == "RUNNING" and x.epochs_done >= 1 and x)
    by_id = {v: k for k, v in cluster.node_ids().items()}  # before timing: it takes seconds
    victim = next(n for n, g in GPU_TYPES.items() if g == by_id[t.node])
    done = t.epochs_done
    t = _poll(lambda: (x := trial()) and x.epochs_done > done and x, every=0.05)
    seen_at, done = time.monotonic(), t.epochs_done  # an epoch just ended
    epoch_s = float(t.epoch_time_s or 5.0)
    time.sleep(epoch_s / 2)
    now = trial()
    if now.epochs_done > done:  # an epoch ended while we waited: count from there
        done, seen_at = now.epochs_done, time.monotonic()
    t_kill = time.monotonic()
    cluster.kill(victim)
    progress = done + min(1.0, (t_kill - seen_at) / epoch_s)

    attempts = lambda: ledger.attempts(name, t.key)  # noqa: E731
    _poll(lambda: attempts()[0]["outcome"] not in (None, "running") or len(attempts()) > 1)
    t_detect = time.monotonic() - t_kill
    _poll(lambda: len(attempts()) > 1)
    t_relaunch = time.monotonic() - t_kill
    # The new attempt's row says where it resumed only once its first report arrives (the
    # driver opens it at 0 and notes the node and resume epoch from that report).
    _poll(lambda: attempts()[-1]["node"] is not None, every=0.05)
    start_epoch = int(attempts()[-1]["start_epoch"])
    t2 = _poll(lambda: (x := trial()) and x.epochs_done > start_epoch and x)
    t_trains = time.monotonic() - t_kill - float(t2.epoch_time_s or 0)
    out, _ = driver.communicate(timeout=900)
    assert driver.returncode == 0, out[-3000:]
    cluster.heal()
    return {
        "detect": t_detect,
        "relaunch": t_relaunch,
        "trains": t_trains,
        "lost": progress - start_epoch,
        "epoch_s": epoch_s,
    }


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = int(args[0]) if args else 3
    defaults = "--ray-defaults" in sys.argv
    work = Path(tempfile.mkdtemp(prefix="orch-rec-", dir="/tmp"))
    cluster = RealCluster(work, **({"head_env": {}} if defaults else {}))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        cluster.start()
        hc = "Ray defaults" if defaults else "period 1 s, timeout 4 s, 5 failures"
        print(f"health checks: {hc}; {runs} run(s); SIGKILL of the trial's worker mid-epoch")
        print(f"{'run':>3} {'epoch':>7} {'detect':>7} {'relaunch':>9} {'trains':>7} {'lost':>6}")
        rows = []
        for i in range(runs):
            r = one_run(cluster, work, i)
            rows.append(r)
            print(
                f"{i:>3} {r['epoch_s']:>6.1f}s {r['detect']:>6.1f}s {r['relaunch']:>8.1f}s "
                f"{r['trains']:>6.1f}s {r['lost']:>6.2f}",
                flush=True,
            )
        for k in ("detect", "relaunch", "trains", "lost"):
            xs = [r[k] for r in rows]
            spread = statistics.stdev(xs) if len(xs) > 1 else 0.0
            print(f"{k}: mean {statistics.mean(xs):.2f} (sd {spread:.2f}, n={len(xs)})")
    finally:
        cluster.shutdown()
        if "--keep" not in sys.argv:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
