"""The key feeder: Tune's source of trials for orch (scheduling/adapters/searcher.py)."""

from __future__ import annotations

import time
from pathlib import Path

from ray.tune.search import Searcher

from orchestrator.scheduling.adapters.searcher import KeyFeeder

PAIRS = [(k, k.upper()) for k in "abcd"]


def test_hands_out_keys_in_launch_order_then_finishes() -> None:
    feeder = KeyFeeder([("c", "C"), ("a", "A"), ("b", "B")])
    got = [feeder.suggest(f"t{i}") for i in range(3)]
    assert got == [
        {"trial_key": "c", "trial_name": "C"},
        {"trial_key": "a", "trial_name": "A"},
        {"trial_key": "b", "trial_name": "B"},
    ]
    assert feeder.exhausted
    assert feeder.suggest("t3") == Searcher.FINISHED


def test_max_concurrent_counts_live_trials_and_given_up_ones_free_their_slot() -> None:
    feeder = KeyFeeder(PAIRS, max_concurrent=2)
    assert feeder.suggest("t0") == {"trial_key": "a", "trial_name": "A"}
    assert feeder.suggest("t1") == {"trial_key": "b", "trial_name": "B"}
    assert feeder.suggest("t2") is None  # two live: Tune asks again later
    feeder.on_trial_complete("t0", {})
    assert feeder.suggest("t2") == {"trial_key": "c", "trial_name": "C"}
    assert feeder.suggest("t3") is None
    feeder.release("b")  # the driver gave it up; Tune keeps it PENDING for ever
    assert feeder.suggest("t3") == {"trial_key": "d", "trial_name": "D"}
    feeder.release("never-handed-out")  # no effect
    assert feeder.running == 2


def test_state_survives_save_and_restore(tmp_path: Path) -> None:
    feeder = KeyFeeder(PAIRS, max_concurrent=3)
    feeder.suggest("t0")
    feeder.suggest("t1")
    feeder.release("b")
    path = str(tmp_path / "searcher.json")
    feeder.save(path)
    restored = KeyFeeder([])
    restored.restore(path)
    assert restored.get_state() == feeder.get_state()
    assert [restored.suggest("t2"), restored.suggest("t3")] == [
        {"trial_key": "c", "trial_name": "C"},
        {"trial_key": "d", "trial_name": "D"},
    ]
    assert restored.suggest("t4") == Searcher.FINISHED


def test_cost_per_trial_does_not_grow_with_the_grid() -> None:
    """A grid_search copied the whole key list for every trial; here 10,000 trials take
    about as long per trial as 1,000."""

    def per_trial(n: int) -> float:
        feeder = KeyFeeder([(f"{i:064x}", f"t{i}") for i in range(n)])
        start = time.perf_counter()
        for i in range(n):
            feeder.suggest(str(i))
            feeder.on_trial_complete(str(i))
        return (time.perf_counter() - start) / n

    small, large = per_trial(1_000), per_trial(10_000)
    assert large < 5 * small + 1e-5, (small, large)


def test_the_watchdog_frees_a_given_up_slot_and_ends_only_once_all_were_handed_out(
    tmp_path: Path,
) -> None:
    """max_concurrent = 1 and no node can hold a trial: the first is given up, which lets
    the feeder hand out the second; the experiment ends only once both were handed out and
    given up (a trial Tune has not been handed yet is unfinished too)."""
    from types import SimpleNamespace

    from orchestrator.protocol import TuneStatus
    from orchestrator.scheduling.adapters.control import Control
    from orchestrator.scheduling.adapters.watchdog import InfeasibleWatchdog
    from orchestrator.spec.load import parse_job

    job = parse_job(
        {
            "job": {"name": "w"},
            "defaults": {"seeds": [0, 1]},
            "trial": [{"name": "t", "model": "lenet5", "dataset": "digits", "epochs": 1}],
        },
        "w.toml",
    )
    feeder = KeyFeeder([(t.key, t.name) for t in job.trials], max_concurrent=1)
    specs = {t.key: t for t in job.trials}
    watchdog = InfeasibleWatchdog(
        specs, Control(tmp_path), [], lambda: [], grace_s=0.0, period_s=0.0, feeder=feeder
    )
    first = SimpleNamespace(config=feeder.suggest("t0"), status=TuneStatus.PENDING)
    assert feeder.suggest("t1") is None  # the one slot is taken
    watchdog.on_step_end(0, [first])
    assert watchdog.given_up == {job.trials[0].key}
    assert not watchdog.stop_all()  # the second trial was never handed to Tune
    second = SimpleNamespace(config=feeder.suggest("t1"), status=TuneStatus.PENDING)
    assert second.config is not None and second.config["trial_key"] == job.trials[1].key
    assert feeder.suggest("t2") == Searcher.FINISHED
    watchdog.on_step_end(1, [first, second])
    assert watchdog.stop_all()
