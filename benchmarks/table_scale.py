"""Is `orch table` fast on a big job? Target: 2,000 runs -> table in under 5 s.

Writes a job of RUNS trial runs (CELLS grid cells x SEEDS seeds) into a real MLflow SQLite
store in a temporary directory, the way the recorder writes them: trial tags (state, group,
position, hardware, reference numbers), the same params as MlflowStore, per-epoch metrics
for EPOCHS epochs (step = epoch) and the final metrics. Each run is one create_run and one
log_batch, so creating the store is quick enough; its time is printed separately.

Then it times what `orch table` does, each part separately:
  fetch_records (tags, params and latest metrics of every run, no metric histories), both
  ways it can read: MLflow's tables directly (the default for a database-backed store) and
  MLflow's client (one paged search_runs; what an http(s) tracking server gets);
  build_table; rendering (Markdown, CSV, JSON, the rich terminal table);
then `orch table` end to end in fresh processes. For contrast it times the one-query-per-
run pattern (MlflowClient.get_run) on a sample and extrapolates.

    .venv/bin/python benchmarks/table_scale.py [--runs 2000] [--seeds 5] [--epochs 20]
                                              [--keep DIR]

Prints a Markdown block for benchmarks/RESULTS.md ("## Table from MLflow at scale").
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

JOB = "scale"
GPUS = ("GTX 1080 Ti", "GTX 1080 Ti x2", "Tesla V100", "RTX 2080 Ti")
MODELS = ("lenet5", "resnet20", "resnet56", "wrn_16_8", "densenet_100_12", "resnext29_4x64d")


def create_store(uri: str, runs: int, seeds: int, epochs: int) -> float:
    """Writes the job; returns seconds taken."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    _fast_sqlite_writes()
    t0 = time.perf_counter()
    client = MlflowClient(uri)
    exp = client.create_experiment(JOB)
    parent = client.create_run(exp, run_name=JOB, tags={"orch.role": "job", "orch.job": JOB})
    parent_id = parent.info.run_id
    now = int(time.time() * 1000)
    for i in range(runs):
        cell, seed = divmod(i, seeds)
        model = MODELS[cell % len(MODELS)]
        gpu = GPUS[cell % len(GPUS)]
        state = "FINISHED" if i % 50 else ("RUNNING" if i % 100 else "FAILED")
        group = f"{model}-cell{cell:04d}"
        tags = {
            "orch.role": "trial",
            "orch.job": JOB,
            "orch.trial_key": f"key{i:06d}",
            "orch.state": state,
            "orch.group": group,
            "orch.position": str(i),
            "orch.hardware": gpu,
            "orch.mixed_hardware": "False",
            "orch.gpu": gpu,
            "orch.gpu_count": "1",
            "orch.precision": "float32",
            "mlflow.parentRunId": parent_id,
            "orch.ref.accuracy": "91.82",
            "orch.ref.params": "274442",
            "orch.ref.time": "44 min",
            "orch.ref.gpu": "GTX 1080 Ti",
            "orch.ref.source": "BIGBALLON/cifar-10-cnn README",
        }
        if state == "FAILED":
            tags["orch.error"] = "ResourceExhaustedError: OOM when allocating tensor"
        run = client.create_run(exp, run_name=f"{group} seed={seed}", tags=tags, start_time=now + i)
        params = {
            "model": model,
            "dataset": "cifar10",
            "epochs": "200",
            "batch_size": "128",
            "seed": str(seed),
            "optimizer": "sgd",
            "lr": "0.1",
            "momentum": "0.9",
            "nesterov": "True",
            "weight_decay": "0.0001",
            "weight_decay_mode": "l2",
            "schedule": '{"kind": "step"}',
            "preprocess": "meanstd",
            "augment": "standard",
            "precision": "float32",
            "xla": "False",
            "validation_size": "0",
            "train_size": "50000",
            "test_size": "10000",
            "gpus": "1",
            "cpus": "4",
        }
        done = epochs if state == "FINISHED" else epochs // 2
        metrics = []
        for e in range(done):
            acc = 0.9 * (1 - 0.9 ** (e + 1))
            for key, value in (
                ("loss", 2 - acc),
                ("accuracy", acc),
                ("val_loss", 2.1 - acc),
                ("val_accuracy", acc - 0.01),
                ("lr", 0.1),
                ("epoch_time_s", 30.0),
                ("images_per_s", 1700.0 + cell),
                ("train_time_s", 30.0 * (e + 1)),
                ("epochs_done", e + 1),
            ):
                metrics.append(Metric(key, value, now + e, e))
        if state == "FINISHED":
            metrics += [
                Metric(k, v, now + done, done - 1)
                for k, v in (
                    ("test_accuracy", 0.915 + 0.001 * seed),
                    ("test_loss", 0.3),
                    ("train_time_s", 2640.0 + seed),
                    ("lost_time_s", 0.0),
                    ("params", 274442),
                )
            ]
        client.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag("mlflow.runName", f"{group} seed={seed}")],
        )
        if state != "RUNNING":
            client.set_terminated(run.info.run_id, "FINISHED" if state == "FINISHED" else "FAILED")
    return time.perf_counter() - t0


def _fast_sqlite_writes() -> None:
    """PRAGMA synchronous=OFF on every SQLite connection: no fsync per commit. Halves the
    time to create the store; it changes nothing for reads, which are what is timed."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _no_fsync(dbapi_conn: Any, _: Any) -> None:
        if type(dbapi_conn).__module__.startswith("sqlite3"):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA synchronous=OFF")
            cur.close()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def one_pass(uri: str, direct_sql: bool) -> dict[str, float]:
    from rich.console import Console

    from orchestrator.cli import render as term
    from orchestrator.report.formats import to_csv, to_json, to_markdown
    from orchestrator.report.table import build_table
    from orchestrator.tracking.runs import fetch_records

    t: dict[str, float] = {}
    t["fetch_records"], records = timed(lambda: fetch_records(uri, JOB, direct_sql=direct_sql))
    t["build_table"], rows = timed(lambda: build_table(records))
    t["render md"], _ = timed(lambda: to_markdown(rows))
    t["render csv"], _ = timed(lambda: to_csv(rows))
    t["render json"], _ = timed(lambda: to_json(rows, JOB))
    sink = Console(file=io.StringIO(), width=200)
    t["render rich"], _ = timed(lambda: sink.print(term.benchmark_table(rows, JOB, 200)))
    t["total"] = sum(t.values())
    t["_runs"], t["_rows"] = len(records), len(rows)
    return t


def cli_seconds(uri: str, repeats: int) -> list[float]:
    """`orch table JOB --format md` end to end, in a fresh process each time."""
    orch = Path(sys.executable).parent / "orch"
    env = {**os.environ, "ORCH_TRACKING_URI": uri, "ORCH_HOME": tempfile.mkdtemp()}
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(
            [str(orch), "table", JOB, "--format", "md"], env=env, check=True, capture_output=True
        )
        out.append(time.perf_counter() - t0)
    return out


def per_run_queries(uri: str, sample: int) -> float:
    """Seconds per run for the one-get_run-per-run pattern (on `sample` runs)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(JOB)
    ids = [r.info.run_id for r in client.search_runs([exp.experiment_id], max_results=sample)]
    t0 = time.perf_counter()
    for run_id in ids:
        client.get_run(run_id)
    return (time.perf_counter() - t0) / len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=20, help="per-epoch metrics logged per run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--keep", type=Path, help="keep the store in this folder (reused when it already has one)"
    )
    args = ap.parse_args()
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        created = None
        if not (folder / "mlflow.db").exists():
            created = create_store(uri, args.runs, args.seeds, args.epochs)
        size_mb = (folder / "mlflow.db").stat().st_size / 1e6
        cold = one_pass(uri, direct_sql=True)  # first read in this process
        tables = [one_pass(uri, direct_sql=True) for _ in range(args.repeats)]
        client = [one_pass(uri, direct_sql=False) for _ in range(args.repeats)]
        cli = cli_seconds(uri, 3)
        per_run = per_run_queries(uri, 100)

    load = os.getloadavg()[0]
    print(
        f"### {dt.date.today()}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, 1-min load {load:.1f} at the end\n"
    )
    made = (
        f"created in {created:.0f} s (create_run + one log_batch + set_terminated per "
        "run, SQLite synchronous=OFF)"
        if created is not None
        else "reused"
    )
    print(
        f"Store: {int(cold['_runs'])} trial runs ({int(cold['_rows'])} cells x {args.seeds} "
        f"seeds), {args.epochs} epochs of 9 per-epoch metrics each, {size_mb:.0f} MB "
        f"SQLite; {made}.\n"
    )
    print(
        f"| step | MLflow tables, first (s) | MLflow tables, median of {args.repeats} (s) "
        f"| MLflow client, median of {args.repeats} (s) |"
    )
    print("|---|---:|---:|---:|")
    for key in (
        "fetch_records",
        "build_table",
        "render md",
        "render csv",
        "render json",
        "render rich",
        "total",
    ):
        cells = [
            cold[key],
            statistics.median(w[key] for w in tables),
            statistics.median(w[key] for w in client),
        ]
        b = "**" if key == "total" else ""
        print(f"| {b}{key}{b} | " + " | ".join(f"{b}{c:.2f}{b}" for c in cells) + " |")
    print(
        f"\n`orch table {JOB} --format md` end to end in a fresh process (Python start-up, "
        f"imports, MLflow store start-up included): median {statistics.median(cli):.1f} s "
        f"({min(cli):.1f}-{max(cli):.1f}, 3 runs)."
    )
    print(
        f"\nOne get_run per run instead: {per_run * 1000:.1f} ms/run, about "
        f"{per_run * args.runs:.0f} s for {args.runs} runs (fetch alone)."
    )


if __name__ == "__main__":
    main()
