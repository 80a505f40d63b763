"""Before launch, every node that may run a trial reads (or fetches) its dataset: a real
local Ray runs one probe task per node; a missing dataset is one error naming the dataset,
the node and the fix, and `orch submit` launches nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.data.cifar import CIFAR10
from orchestrator.errors import DatasetError
from orchestrator.scheduling.adapters.datacheck import (
    DataNeed,
    _probe,
    check_datasets,
    describe,
    needs_by_node,
    require,
)
from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.spec.load import parse_job
from tests.conftest import run_orch
from tests.unit.test_datasets import tar_gz, write_cifar

pytestmark = pytest.mark.integration


def _job(data_dir: str | None = None, gpus: float = 0) -> list:
    trial = {"name": "r", "model": "resnet20", "dataset": "cifar10", "epochs": 1,
             "resources": {"gpus": gpus, "cpus": 1}}  # fmt: skip
    if data_dir:
        trial["data"] = {"data_dir": data_dir}
    digits = {"name": "d", "model": "lenet5", "dataset": "digits", "epochs": 1}
    return parse_job({"job": {"name": "dc"}, "trial": [trial, digits]}, "dc.toml").trials


def test_only_nodes_that_can_run_a_trial_are_asked() -> None:
    cpu = NodeInfo("a" * 56, "10.0.0.1", cpus=8, gpus=0, memory_gb=32, gpu_type="cpu")
    gpu = NodeInfo("b" * 56, "10.0.0.2", cpus=8, gpus=1, memory_gb=32, gpu_type="gtx-1080-ti")
    spare = NodeInfo("c" * 56, "", 8, 8, 64, "v100", source="autoscaler")
    needs = needs_by_node(_job(gpus=1), [cpu, gpu, spare])
    assert needs == {gpu.node_id: {DataNeed("cifar10", None)}}  # digits needs no files


def test_a_missing_dataset_is_one_error_before_launch(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import ray

    from orchestrator.scheduling.adapters.datacheck import check_nodes
    from orchestrator.scheduling.adapters.inventory import snapshot

    monkeypatch.setenv("ORCH_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("ORCH_DATA_DIR", raising=False)
    ray.init(address="local", num_cpus=1, include_dashboard=False)
    try:
        nodes = snapshot()
        missing = check_nodes(_job(str(tmp_path / "nowhere")), nodes)
        assert [r.ok for r in missing] == [False]
        with pytest.raises(DatasetError) as err:
            require(missing)
        msg = str(err.value)
        assert "dataset 'cifar10'" in msg and missing[0].host in msg  # dataset, node
        assert "orch is offline" in msg and "ORCH_DATA_DIR" in msg  # the fix
        assert "Nothing was launched" in msg
        there = tmp_path / "data"
        there.mkdir()
        tar_gz(write_cifar(tmp_path / "src", CIFAR10), there / "cifar-10-python.tar.gz")
        found = check_nodes(_job(str(there)), nodes)
        assert [r.ok for r in found] == [True]
        require(found)
        # orch cluster check looks only: offline and absent is MISSING; online, a later fetch.
        (looked,) = check_datasets(["cifar100", "digits"], nodes)
        assert not looked.ok and "MISSING" in describe([looked])[0]
        # Online (the node's own environment decides), absent means "fetched on first use".
        monkeypatch.setenv("ORCH_OFFLINE", "0")
        ((ok, _, detail),) = _probe([("cifar100", None)], fetch=False)
        assert ok and "fetched on first use" in detail
        assert not (tmp_path / "keras" / "datasets").exists()  # nothing was downloaded
        assert "dataset cifar10 on node" in describe(found)[0] and ": ok: " in describe(found)[0]
    finally:
        ray.shutdown()


def test_submit_refuses_before_any_trial_runs(tmp_path: Path) -> None:
    job = tmp_path / "c10.toml"
    job.write_text(
        '[job]\nname = "c10-missing"\n[[trial]]\nname = "ResNet-20"\nmodel = "resnet20"\n'
        'dataset = "cifar10"\nepochs = 1\nresources = { cpus = 1 }\n'
    )
    proc = run_orch(
        "submit", str(job),
        env={"ORCH_HOME": str(tmp_path / ".orch"), "ORCH_OFFLINE": "1",
             "KERAS_HOME": str(tmp_path / "keras"), "ORCH_DATA_DIR": str(tmp_path / "none")},
        timeout=600,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "dataset 'cifar10' cannot be read on node" in out and "Traceback" not in out
    assert "RUNNING" not in out and "ResNet-20   " not in out  # no live table was drawn
