"""The table from a real MLflow SQLite store: runs written with MlflowClient the way the
recorder writes them (tags, params, per-epoch and final metrics), read back by
fetch_records with nothing but the tracking URI and the job name. Golden text for md and csv.
"""

# ruff: noqa: E501  (golden tables are compared as exact text, one table row per line)
from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator.report.formats import to_csv, to_markdown
from orchestrator.report.table import build_table
from orchestrator.tracking.runs import fetch_records, metric_histories
from tests.conftest import run_orch

pytestmark = pytest.mark.integration

JOB = "golden"
T0 = 1_700_000_000_000  # start times (ms), so the order never depends on the clock


def write_trial(
    client: Any,
    exp_id: str,
    parent: str,
    name: str,
    *,
    model: str,
    state: str,
    position: int,
    seed: int = 0,
    group: str | None = None,
    hardware: str | None = "GTX 1080 Ti",
    mixed: bool = False,
    params: int | None = None,
    epochs: int = 200,
    batch_size: int = 128,
    done: int = 0,
    curve: tuple[float, ...] = (),
    final: Mapping[str, float] = (),
    ref: Mapping[str, Any] = (),
    error: str | None = None,
    job: str = JOB,
    images_per_s: float = 1000.0,
    epoch_time_s: float = 10.0,
) -> str:
    """One trial run as the recorder leaves it: returns the run id."""
    from mlflow.entities import Metric, Param, RunTag

    tags = {
        "orch.role": "trial",
        "orch.job": job,
        "orch.trial_key": f"k-{name}",
        "orch.state": state,
        "orch.position": str(position),
        "orch.group": group or name,
        "mlflow.parentRunId": parent,
    }
    tags.update({f"orch.ref.{k}": str(v) for k, v in dict(ref).items()})
    if hardware:
        tags.update(
            {
                "orch.hardware": hardware,
                "orch.mixed_hardware": str(mixed),
                "orch.gpu": hardware.split(" + ")[0],
                "orch.gpu_count": "1",
            }
        )
    if error:
        tags["orch.error"] = error
    run = client.create_run(exp_id, run_name=name, tags=tags, start_time=T0 + position)
    run_id = run.info.run_id
    metrics = []
    for epoch, acc in enumerate(curve):
        for key, value in (
            ("val_accuracy", acc),
            ("accuracy", acc + 0.02),
            ("loss", 2.0 - acc),
            ("epochs_done", epoch + 1),
            ("images_per_s", images_per_s),
            ("train_time_s", epoch_time_s * (epoch + 1)),
        ):
            metrics.append(Metric(key, float(value), T0 + epoch, epoch))
    if done and not curve:
        metrics += [
            Metric("epochs_done", float(done), T0, done - 1),
            Metric("images_per_s", images_per_s, T0, done - 1),
        ]
    if params is not None:
        metrics.append(Metric("params", float(params), T0, 0))
    metrics += [Metric(k, float(v), T0 + 10_000, max(done - 1, 0)) for k, v in dict(final).items()]
    client.log_batch(
        run_id,
        metrics=metrics,
        params=[
            Param("model", model),
            Param("dataset", "cifar10"),
            Param("epochs", str(epochs)),
            Param("batch_size", str(batch_size)),
            Param("seed", str(seed)),
        ],
        tags=[RunTag("mlflow.runName", name)],
    )
    if state in ("FINISHED", "FAILED", "DIVERGED"):
        client.set_terminated(
            run_id, "FINISHED" if state == "FINISHED" else "FAILED", end_time=T0 + 20_000
        )
    return run_id


def artifacts_beside(uri: str) -> str | None:
    """The artifact root next to a SQLite store: without one MLflow puts artifacts under
    ./mlruns of whatever folder the test runs in (the repository). None (MLflow's default)
    for a server store, where these tests write no artifacts."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()


def write_golden_job(uri: str, experiment: str = JOB) -> dict[str, str]:
    """Five grid cells: a single run, three seeds, a running, a failed and a mixed-hardware
    cell; plus a run of another job and a deleted run, which the table must leave out."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.create_experiment(experiment, artifact_location=artifacts_beside(uri))
    parent = client.create_run(
        exp, run_name=JOB, tags={"orch.role": "job", "orch.job": JOB}, start_time=T0
    ).info.run_id
    ids = {}
    curve = (0.40, 0.62, 0.71, 0.74, 0.76)
    ids["lenet"] = write_trial(
        client,
        exp,
        parent,
        "LeNet-5",
        model="lenet5",
        state="FINISHED",
        position=0,
        params=62006,
        done=200,
        curve=curve,
        images_per_s=9000.0,
        final={"test_accuracy": 0.7651, "train_time_s": 1815.0, "test_loss": 0.7},
        ref={"accuracy": 76.23, "params": 62006, "time": "30 min"},
    )
    for seed, acc in enumerate((0.9175, 0.9190, 0.9202)):
        ids[f"resnet20-{seed}"] = write_trial(
            client,
            exp,
            parent,
            f"ResNet-20 seed={seed}",
            group="ResNet-20",
            model="resnet20",
            state="FINISHED",
            position=1 + seed,
            seed=seed,
            params=274442,
            done=200,
            curve=tuple(min(a + 0.15, acc) for a in curve),
            final={"test_accuracy": acc, "train_time_s": 2600.0 + 60 * seed},
            ref={"accuracy": 91.82, "params": 274442},
            images_per_s=4000.0,
        )
    ids["wrn"] = write_trial(
        client,
        exp,
        parent,
        "WRN-16-8",
        model="wrn_16_8",
        state="RUNNING",
        position=4,
        params=11_278_234,
        curve=tuple(0.5 + 0.4 * (1 - 0.95**e) for e in range(57)),
        epoch_time_s=88.0,
        images_per_s=600.0,
        ref={"accuracy": 95.13, "params": "11.3M"},
    )
    ids["vgg"] = write_trial(
        client,
        exp,
        parent,
        "VGG19",
        model="vgg19",
        state="FAILED",
        position=5,
        hardware="Tesla V100",
        params=39_002_738,
        done=3,
        error="Traceback (most recent call last):\n  File x\n"
        "ResourceExhaustedError: OOM when allocating tensor with shape [128,64,32,32]",
        ref={"accuracy": 93.53, "params": "39M"},
    )
    ids["densenet"] = write_trial(
        client,
        exp,
        parent,
        "DenseNet-100x12",
        model="densenet_100_12",
        state="FINISHED",
        position=6,
        hardware="GTX 1080 Ti + Tesla V100",
        mixed=True,
        params=769_962,
        batch_size=64,
        epochs=250,
        done=250,
        curve=curve,
        images_per_s=700.0,
        final={"test_accuracy": 0.9478, "train_time_s": 62_400.0},
        ref={"accuracy": 94.91, "params": "0.85M", "time": "17h20"},
    )
    write_trial(
        client,
        exp,
        parent,
        "Other job",
        model="lenet5",
        state="FINISHED",
        position=0,
        job="another",
        final={"test_accuracy": 0.5},
    )
    gone = write_trial(
        client,
        exp,
        parent,
        "LeNet-5 (old)",
        model="lenet5",
        state="FINISHED",
        position=0,
        final={"test_accuracy": 0.1},
    )
    client.delete_run(gone)
    return ids


GOLDEN_MD = """\
| network | GPU | params | batch size | epochs | training time | accuracy (%) | n | reference (%) | diff | verdict | params check |
|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|:---|:---|
| LeNet-5 | GTX 1080 Ti | 62k | 128 | 200 | 30 min | 76.51 | 1 | 76.23 | +0.28 | reproduced | ok |
| ResNet-20 | GTX 1080 Ti | 0.27M | 128 | 200 | 44 min | 91.89 ± 0.14 | 3 | 91.82 | +0.07 | reproduced (+0.5σ) | ok |
| WRN-16-8 | GTX 1080 Ti | 11.3M | 128 | 200 | 1h24 so far | running: epoch 57/200 | 0/1 | 95.13 |  |  | ok |
| VGG19 | Tesla V100 | 39.0M | 128 | 200 | - | failed: ResourceExhaustedError: OOM when allocating tensor with sha… | 0/1 | 93.53 |  |  | ok |
| DenseNet-100x12 | GTX 1080 Ti + Tesla V100 † | 0.77M | 64 | 250 | 17h20 | 94.78 | 1 | 94.91 | -0.13 | reproduced | params differ: 0.77M vs 0.85M (-9%) |

† ran on more than one GPU type (resumed elsewhere); its training time mixes their speeds.
"""

GOLDEN_CSV = """\
network,model,dataset,state,gpu,mixed_hardware,params,batch_size,epochs,train_time_s,training_time,time_note,accuracy,accuracy_std,n,runs,reference,diff,verdict,reference_params,params_check,progress,error,run_ids,provenance_differs,provenance
LeNet-5,lenet5,cifar10,FINISHED,GTX 1080 Ti,false,62006,128,200,1815.0,30 min,,76.51,,1,1,76.23,0.28,reproduced,62006,ok,,,{lenet},,
ResNet-20,resnet20,cifar10,FINISHED,GTX 1080 Ti,false,274442,128,200,2660.0,44 min,,91.89,0.135,3,3,91.82,0.07,reproduced (+0.5σ),274442,ok,,,{resnet20-0} {resnet20-1} {resnet20-2},,
WRN-16-8,wrn_16_8,cifar10,RUNNING,GTX 1080 Ti,false,11278234,128,200,5016.0,1h24 so far,so far,,,0,1,95.13,,,11300000,ok,running: epoch 57/200,,{wrn},,
VGG19,vgg19,cifar10,FAILED,Tesla V100,false,39002738,128,200,,-,,,,0,1,93.53,,,39000000,ok,failed: ResourceExhaustedError: OOM when allocating tensor with sha…,"Traceback (most recent call last):
  File x
ResourceExhaustedError: OOM when allocating tensor with shape [128,64,32,32]",{vgg},,
DenseNet-100x12,densenet_100_12,cifar10,FINISHED,GTX 1080 Ti + Tesla V100,true,769962,64,250,62400.0,17h20,,94.78,,1,1,94.91,-0.13,reproduced,850000,params differ: 0.77M vs 0.85M (-9%),,,{densenet},,
"""


@pytest.fixture
def store(orch_home: Path) -> tuple[str, dict[str, str]]:
    uri = f"sqlite:///{orch_home / 'mlflow.db'}"
    orch_home.mkdir(parents=True, exist_ok=True)
    return uri, write_golden_job(uri)


@pytest.mark.parametrize("direct_sql", [True, False], ids=["tables", "client"])
def test_golden_markdown(store: tuple[str, dict[str, str]], direct_sql: bool) -> None:
    uri, _ = store
    records = fetch_records(uri, JOB, direct_sql=direct_sql)
    assert len(records) == 7  # the other job's run and the deleted run are left out
    assert to_markdown(build_table(records)) == GOLDEN_MD


def test_tables_and_client_read_the_same(store: tuple[str, dict[str, str]]) -> None:
    """The direct read of MLflow's tables gives exactly what MLflow's client gives."""
    uri, _ = store
    assert fetch_records(uri, JOB, direct_sql=True) == fetch_records(uri, JOB, direct_sql=False)


def test_postgresql_store(pg_url: str) -> None:
    """The same golden table from MLflow on PostgreSQL, both ways."""
    write_golden_job(pg_url)
    for direct_sql in (True, False):
        records = fetch_records(pg_url, JOB, direct_sql=direct_sql)
        assert to_markdown(build_table(records)) == GOLDEN_MD


def test_golden_csv(store: tuple[str, dict[str, str]]) -> None:
    uri, ids = store
    text = to_csv(build_table(fetch_records(uri, JOB)))
    assert text == GOLDEN_CSV.format(**ids)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["state"] for r in rows] == ["FINISHED", "FINISHED", "RUNNING", "FAILED", "FINISHED"]


def test_records_carry_what_the_recorder_wrote(store: tuple[str, dict[str, str]]) -> None:
    uri, ids = store
    by_id = {r.run_id: r for r in fetch_records(uri, JOB)}
    wrn, dense = by_id[ids["wrn"]], by_id[ids["densenet"]]
    assert (wrn.state, wrn.epochs_done, wrn.position, wrn.cell) == ("RUNNING", 57, 4, "WRN-16-8")
    assert dense.mixed_hardware and dense.gpu == "GTX 1080 Ti + Tesla V100"
    assert dense.reference["params"] == "0.85M" and dense.dataset == "cifar10"
    assert by_id[ids["resnet20-2"]].seed == 2 and by_id[ids["lenet"]].images_per_s == 9000.0
    curves = metric_histories(uri, [ids["lenet"], ids["wrn"]])
    assert curves[ids["lenet"]] == [(0, 0.40), (1, 0.62), (2, 0.71), (3, 0.74), (4, 0.76)]
    assert [s for s, _ in curves[ids["wrn"]]] == list(range(57))


def test_experiment_named_otherwise_is_found_by_job_tag(orch_home: Path) -> None:
    orch_home.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{orch_home / 'mlflow.db'}"
    write_golden_job(uri, experiment="cifar10-reproduction")
    assert len(fetch_records(uri, JOB)) == 7
    assert len(fetch_records(uri, JOB, experiment="cifar10-reproduction")) == 7


def test_cli_formats_from_the_tracking_uri_alone(
    store: tuple[str, dict[str, str]], orch_home: Path, tmp_path: Path
) -> None:
    uri, _ = store
    # Another user: no workspace of theirs, no ledger; only ORCH_TRACKING_URI.
    env = {"ORCH_HOME": str(tmp_path / "elsewhere"), "ORCH_TRACKING_URI": uri}
    md = run_orch("table", JOB, "--format", "md", env=env, cwd=tmp_path)
    assert md.returncode == 0, md.stderr
    assert md.stdout == GOLDEN_MD
    assert not (tmp_path / "elsewhere" / "orch.db").exists()
    js = run_orch("table", JOB, "-f", "json", env=env, cwd=tmp_path)
    assert js.returncode == 0, js.stderr
    doc = json.loads(js.stdout)
    assert [r["network"] for r in doc["rows"]][:2] == ["LeNet-5", "ResNet-20"]
    tex = run_orch("table", JOB, "-f", "latex", env=env, cwd=tmp_path)
    assert tex.returncode == 0 and r"\dag{}" in tex.stdout and r"$\pm$" in tex.stdout
    rich = run_orch("table", JOB, env=env, cwd=tmp_path)
    assert rich.returncode == 0 and "running: epoch 57/200" in rich.stdout
    assert "params differ:" in rich.stdout and "(-9%)" in rich.stdout  # may wrap at 200
    bad = run_orch("table", JOB, "-f", "xlsx", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "unknown format 'xlsx'" in bad.stderr
    missing = run_orch("table", "nope", env=env, cwd=tmp_path)
    assert missing.returncode == 2 and "no trial runs of job 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_cli_normalises_time_to_a_measured_gpu(orch_home: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    orch_home.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{orch_home / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("speed", artifact_location=artifacts_beside(uri))
    parent = client.create_run(exp, tags={"orch.role": "job", "orch.job": "speed"}).info.run_id
    for pos, (name, model, hw, ips, secs) in enumerate(
        [
            ("ResNet-20 1080Ti", "resnet20", "GTX 1080 Ti", 2000.0, 3600.0),
            ("ResNet-20 V100", "resnet20", "Tesla V100", 5000.0, 1440.0),
            ("LeNet-5 V100", "lenet5", "Tesla V100", 9000.0, 600.0),
        ]
    ):
        write_trial(
            client,
            exp,
            parent,
            name,
            model=model,
            state="FINISHED",
            position=pos,
            job="speed",
            hardware=hw,
            images_per_s=ips,
            done=200,
            final={"test_accuracy": 0.9, "train_time_s": secs},
        )
    env = {"ORCH_HOME": str(tmp_path / "other"), "ORCH_TRACKING_URI": uri}
    out = run_orch(
        "table", "speed", "-f", "md", "--normalize-to", "GTX 1080 Ti", env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    times = [ln.split(" | ")[5] for ln in out.stdout.splitlines()[2:5]]
    assert times == ["1h00", "1h00", "10 min*"]
    assert "* no measured speed ratio to GTX 1080 Ti" in out.stdout
    lower = run_orch(
        "table", "speed", "-f", "md", "--normalize-to", "gtx 1080 ti", env=env, cwd=tmp_path
    )
    assert lower.returncode == 0 and lower.stdout == out.stdout
    typo = run_orch("table", "speed", "--normalize-to", "GTX 1080", env=env, cwd=tmp_path)
    assert typo.returncode == 2 and 'Did you mean "GTX 1080 Ti"?' in typo.stderr


def test_results_are_attached_to_a_parent_run_in_an_experiment_named_otherwise(
    orch_home: Path,
) -> None:
    """A job file that names its own MLflow experiment: after the run, its table and report
    land on the job's parent run there (they were looked for under the job's name)."""
    from mlflow.tracking import MlflowClient

    from orchestrator.report.job_report import publish_results

    orch_home.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{orch_home / 'mlflow.db'}"
    write_golden_job(uri, experiment="cifar10-reproduction")
    written = publish_results(JOB, "cifar10-reproduction")
    assert written.path.is_file()
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("cifar10-reproduction")
    parent = client.search_runs([exp.experiment_id], "tags.`orch.role` = 'job'")[0]
    paths = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert paths == {"report/index.html"}
    table = client.download_artifacts(parent.info.run_id, "table/benchmark.md", str(orch_home))
    assert Path(table).read_text() == GOLDEN_MD
