"""A waiting trial whose resources change is asked for again (scheduling/adapters/requeue.py).

On a real two-node Ray cluster (ray.cluster_utils), one GPU of type a and one of type b:
a long trial holds the a GPU and a short one waits, bound to type a too. After a few
seconds its binding changes to type b, as orch's Placement callback does when a bound
type's last node is lost. With Tune's own FIFO scheduler the short trial keeps waiting for
its first request, until the long one ends; with `Requeue` it starts on the b GPU at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LONG_S = 25.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1, num_gpus=1, resources={"type_a": 1})
    c.add_node(num_cpus=1, num_gpus=1, resources={"type_b": 1})
    c.wait_for_nodes()
    ray.init(address=c.address)
    yield c
    ray.shutdown()
    c.shutdown()


def run(tmp_path: Path, scheduler: object) -> dict[str, dict[str, float]]:
    """The two trials; returns each one's start and end time and its node's GPU type."""
    from ray import tune
    from ray.tune.execution.placement_groups import PlacementGroupFactory

    def on(kind: str) -> PlacementGroupFactory:
        return PlacementGroupFactory([{"CPU": 1, "GPU": 1, f"type_{kind}": 0.001}])

    def trainable(config: dict) -> dict:
        import ray

        start = time.time()
        time.sleep(config["secs"])
        ids = ray.get_runtime_context().get_accelerator_ids()
        return {"start": start, "end": time.time(), "gpus": len(ids.get("GPU", []))}

    class Rebind(tune.Callback):
        """Binds the short trial to type b once it has waited 3 s behind the long one."""

        def __init__(self) -> None:
            self.since: float | None = None

        def on_step_end(self, iteration: int, trials: list, **info: object) -> None:
            short = next(t for t in trials if t.config["secs"] < LONG_S)
            if short.status != "PENDING" or self.since == -1:
                return
            if not any(t.status == "RUNNING" for t in trials):
                return
            self.since = self.since or time.time()
            if time.time() - self.since > 3:
                short.update_resources(on("b"))
                self.since = -1

    tuner = tune.Tuner(
        tune.with_resources(trainable, resources=lambda config: on("a")),
        param_space={"secs": tune.grid_search([LONG_S, 0.5])},
        tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=False),
        run_config=tune.RunConfig(storage_path=str(tmp_path), callbacks=[Rebind()], verbose=0),
    )
    results = tuner.fit()
    return {
        "long" if r.config["secs"] >= LONG_S else "short": r.metrics  # type: ignore[misc]
        for r in results
    }


def test_tune_alone_keeps_waiting_on_the_first_request(cluster: object, tmp_path: Path) -> None:
    """Why Requeue exists: if this fails, Tune honours update_resources by itself now."""
    from ray.tune.schedulers import FIFOScheduler

    got = run(tmp_path, FIFOScheduler())
    assert got["short"]["start"] >= got["long"]["end"] - 1.0, got


def test_requeue_asks_again_with_the_new_binding(cluster: object, tmp_path: Path) -> None:
    from orchestrator.scheduling.adapters.requeue import Requeue

    scheduler = Requeue()
    got = run(tmp_path, scheduler)
    assert got["short"]["end"] < got["long"]["end"] - 5.0, got  # it ran beside the long one
    assert got["short"]["gpus"] == 1
    assert scheduler.requeued == 1
