"""The key feeder through a real Ray Tune experiment whose driver is interrupted (SIGINT,
as Ctrl-C) and then restored (Tuner.restore): every key runs, each in one trial."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _report(config: dict[str, Any]) -> None:
    from ray import tune

    flag = Path(os.environ["ORCH_TEST_INTERRUPT"])  # once: the first fit's k1 removes it
    if config["trial_key"] == "k1" and flag.exists():
        flag.unlink()
        os.kill(int(os.environ["ORCH_TEST_DRIVER_PID"]), signal.SIGINT)  # Ctrl-C
    tune.report({"key": config["trial_key"]})


def _keys(results: Any) -> list[str]:
    grid = [results[i] for i in range(len(results))]
    return [str(r.metrics["key"]) for r in grid if r.metrics and "key" in r.metrics]


def test_an_interrupted_experiment_restored_runs_every_key_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray
    from ray import tune

    from orchestrator.scheduling.adapters.searcher import KeyFeeder

    keys = [f"k{i}" for i in range(5)]
    flag = tmp_path / "interrupt"
    flag.touch()
    monkeypatch.setenv("ORCH_TEST_DRIVER_PID", str(os.getpid()))  # workers inherit these
    monkeypatch.setenv("ORCH_TEST_INTERRUPT", str(flag))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            _report,
            tune_config=tune.TuneConfig(
                search_alg=KeyFeeder([(k, k.upper()) for k in keys], max_concurrent=1),
                num_samples=len(keys),
            ),
            run_config=tune.RunConfig(name="restore", storage_path=str(tmp_path), verbose=0),
        )
        first = _keys(tuner.fit())
        assert "k0" in first and len(set(first)) < len(keys), first  # stopped early

        assert not flag.exists()
        restored = tune.Tuner.restore(str(tmp_path / "restore"), _report)
        ran = _keys(restored.fit())
        assert sorted(ran) == keys, ran  # each key in one trial: none lost, none twice
    finally:
        ray.shutdown()
