"""Moving a running trial to a faster GPU that freed up (scheduling/policy/migrate.py): when
a move is made and, as much, when it must not be; and the makespan simulation applying
the same function (scheduling/policy/simulate.py)."""

from __future__ import annotations

import pytest

from orchestrator.scheduling.policy.migrate import (
    Move,
    Rule,
    Running,
    Waiting,
    choose_moves,
    gain,
    waiting_of_group,
    waiting_of_request,
)
from orchestrator.scheduling.policy.simulate import lower_bound, simulate
from tests.unit.test_makespan import TI, node, table, trials

FAST, SLOW = "v100", TI
RULE = Rule(restart_s=60.0, min_gain_s=600.0, min_share=0.1)


def running(
    key: str = "long",
    *,
    on: str = SLOW,
    done: int = 10,
    epochs: int = 100,
    observed: float | None = 100.0,
    est: dict[str, float] | None = None,
    gpus: float = 1.0,
) -> Running:
    # the cost model: the fast type takes half the slow one's time per epoch
    est = est if est is not None else {FAST: 40.0, SLOW: 80.0}
    return Running(key, on, gpus, done, epochs, est, observed)


def test_a_long_trial_on_the_slow_type_moves_to_the_freed_fast_gpu() -> None:
    (move,) = choose_moves([running()], {FAST: 1.0}, [], RULE)
    # 89 epochs left after the one in progress; measured 100 s/epoch on the slow type,
    # 1.25 x its estimate, so 50 s on the fast one: 89 x 50 - 60 s of restart.
    assert move == Move("long", FAST, 89 * 50.0 - 60.0, after_epoch=11)


def test_the_learned_rate_scales_the_fast_estimate() -> None:
    # Measured at the estimate: the fast type saves 40 s per epoch, not 50.
    assert gain(running(observed=80.0), FAST, RULE) == pytest.approx(89 * 40.0 - 60.0)


def test_no_move_while_a_waiting_trial_can_use_the_gpu() -> None:
    assert choose_moves([running()], {FAST: 1.0}, [Waiting(1.0, None)], RULE) == []
    assert choose_moves([running()], {FAST: 1.0}, [Waiting(1.0, frozenset({FAST}))], RULE) == []
    # ... but one bound to other types, or needing more GPUs than are free, does not block
    kept = [Waiting(1.0, frozenset({SLOW})), Waiting(2.0, None)]
    assert [m.key for m in choose_moves([running()], {FAST: 1.0}, kept, RULE)] == ["long"]


def test_no_move_before_an_epoch_is_measured_on_the_current_type() -> None:
    assert choose_moves([running(observed=None)], {FAST: 1.0}, [], RULE) == []


def test_no_move_when_the_gain_is_small() -> None:
    # 4 epochs left after the one in progress: 4 x 50 - 60 = 140 s < 600 s
    assert choose_moves([running(done=95)], {FAST: 1.0}, [], RULE) == []
    # the last epoch in progress: nothing left to move
    assert choose_moves([running(done=99)], {FAST: 1.0}, [], RULE) == []
    # a restart that costs more than the gain
    costly = Rule(restart_s=5000.0, min_gain_s=0.0, min_share=0.0)
    assert choose_moves([running(done=50)], {FAST: 1.0}, [], costly) == []


def test_no_move_below_the_share_of_the_remaining_time() -> None:
    # nearly as fast: 89 x (100 - 95) - 60 = 385 s; passes 300 s but not 10 % of 8,900 s
    near = {FAST: 76.0, SLOW: 80.0}
    rule = Rule(restart_s=60.0, min_gain_s=300.0, min_share=0.1)
    assert choose_moves([running(est=near)], {FAST: 1.0}, [], rule) == []
    assert choose_moves([running(est=near)], {FAST: 1.0}, [], Rule(60.0, 300.0, 0.0)) != []


def test_no_move_to_a_slower_or_less_preferred_type_or_without_room() -> None:
    # already on the fastest type
    assert choose_moves([running(on=FAST)], {SLOW: 1.0}, [], RULE) == []
    # the user ranked the slow type first (gpu_type = ["GTX 1080 Ti", "V100"])
    preferred = {SLOW: 80.0, FAST: 40.0}
    assert choose_moves([running(est=preferred)], {FAST: 1.0}, [], RULE) == []
    # a type it does not accept (no estimate there)
    assert choose_moves([running(est={SLOW: 80.0})], {FAST: 1.0}, [], RULE) == []
    # half a GPU free, the trial needs a whole one
    assert choose_moves([running()], {FAST: 0.5}, [], RULE) == []


def test_one_freed_gpu_goes_to_the_trial_that_gains_most() -> None:
    short, long = running("short", done=60), running("long", done=10)
    moves = choose_moves([short, long], {FAST: 1.0}, [], RULE)
    assert [m.key for m in moves] == ["long"]
    both = choose_moves([short, long], {FAST: 2.0}, [], RULE)
    assert [m.key for m in both] == ["long", "short"]


# -- the simulation ---------------------------------------------------------------------


def test_the_simulation_moves_the_long_trial_when_the_fast_gpu_frees() -> None:
    # resnet20, 10 epochs. One fast and one slow GPU; the short trial takes the fast one
    # (launch order: file order here), the long one the slow one.
    long, short = trials(2)
    times = {long.name: {FAST: 10_000.0, SLOW: 20_000.0}, short.name: {FAST: 3000.0, SLOW: 6000.0}}
    nodes = [node("fast", FAST, 1), node("slow", SLOW, 1)]
    order = [short, long]
    estimate = table(times)
    stay = simulate(order, nodes, table(times), reserved={})
    assert stay == 20_000.0
    placed: dict[str, str] = {}
    rule = Rule(restart_s=60.0, min_gain_s=600.0, min_share=0.1)
    moved = simulate(
        order, nodes, table(times), reserved={}, migrate=rule, estimated=estimate, placed=placed
    )
    # At 3,000 s the long trial is in its 2nd epoch (2,000 s each on the slow GPU); it stops
    # after it at 4,000 s, restarts on the fast GPU (60 s) and runs its 8 epochs left there
    # (1,000 s each).
    assert moved == pytest.approx(4000.0 + 60.0 + 8 * 1000.0)
    assert placed[long.key] == FAST


def test_moving_can_beat_the_bound_for_whole_trials_but_not_the_other() -> None:
    # Two equal trials, one fast and one slow GPU: every schedule of whole trials takes
    # 20,000 s; moving the second to the fast GPU when the first ends at 10,000 s (after
    # its 6th epoch on the slow one) takes 12,000 + 60 + 4 x 1,000 s.
    a, b = trials(2)
    times = {t.name: {FAST: 10_000.0, SLOW: 20_000.0} for t in (a, b)}
    nodes = [node("fast", FAST, 1), node("slow", SLOW, 1)]
    rule = Rule(restart_s=60.0, min_gain_s=600.0, min_share=0.1)
    moved = simulate([a, b], nodes, table(times), reserved={}, migrate=rule, estimated=table(times))
    assert moved == pytest.approx(16_060.0)
    assert lower_bound([a, b], nodes, table(times)) == 20_000.0
    # without the slot term: the fluid bound, 2 / (1/10,000 + 1/20,000) s
    free = lower_bound([a, b], nodes, table(times), whole=False)
    assert free == pytest.approx(40_000.0 / 3, rel=1e-6)
    assert moved >= free


def test_the_simulation_does_not_move_when_a_trial_waits_or_gains_little() -> None:
    long, short, third = trials(3)
    times = {
        long.name: {FAST: 10_000.0, SLOW: 20_000.0},
        short.name: {FAST: 3000.0, SLOW: 6000.0},
        third.name: {FAST: 5000.0, SLOW: 10_000.0},
    }
    nodes = [node("fast", FAST, 1), node("slow", SLOW, 1)]
    rule = Rule(restart_s=60.0, min_gain_s=600.0, min_share=0.1)
    # The third trial waits for a GPU: when the short one ends (3,000 s) it gets the fast
    # one and the long trial stays; when the third ends (8,000 s, the long trial's 4th
    # epoch just done), the long one moves after its 5th: 10,000 + 60 + 5 x 1,000 s.
    order = [short, long, third]
    placed: dict[str, str] = {}
    span = simulate(
        order, nodes, table(times), reserved={}, migrate=rule, estimated=table(times),
        placed=placed,
    )  # fmt: skip
    assert placed[third.key] == FAST
    assert span == pytest.approx(15_060.0)
    # A threshold above the possible gain: no move.
    big = Rule(restart_s=60.0, min_gain_s=1e6, min_share=0.1)
    pair = [short, long]
    kept = simulate(pair, nodes, table(times), reserved={}, migrate=big, estimated=table(times))
    assert kept == 20_000.0


# -- the job option ---------------------------------------------------------------------


def test_the_job_file_switches_moves_on_and_off() -> None:
    from orchestrator.errors import SpecError
    from orchestrator.spec.load import parse_job

    base = {"defaults": {"dataset": "digits", "epochs": 1, "model": "lenet5"}, "trial": [{}]}
    assert parse_job(base, "j.toml").migrate is True  # on by default
    off = parse_job({**base, "job": {"migrate": False}}, "j.toml")
    assert off.migrate is False
    with pytest.raises(SpecError, match=r"job\.migrate"):
        parse_job({**base, "job": {"migrate": "no"}}, "j.toml")


def test_other_jobs_pending_groups_are_waiting_trials() -> None:
    """Another job's placement group Ray has not placed yet (policy/migrate.py,
    waiting_of_group): each GPU bundle is a waiting request; STRICT_PACK is one request
    for the sum, on a type every bundle accepts; CPU bundles ask for no GPU."""
    fast = frozenset({FAST})
    bundles = [(1.0, fast), (0.0, None), (2.0, None)]
    assert waiting_of_group(bundles, one_node=False) == [Waiting(1.0, fast), Waiting(2.0, None)]
    assert waiting_of_group(bundles, one_node=True) == [Waiting(3.0, fast)]
    assert waiting_of_group([(1.0, fast), (1.0, frozenset({SLOW}))], one_node=True) == [
        Waiting(2.0, frozenset())  # no type takes both: it waits for no freed GPU
    ]
    assert waiting_of_group([(0.0, None)], one_node=True) == []


def test_other_jobs_pending_tasks_are_waiting_trials() -> None:
    """A GPU task or actor of other work Ray has not placed (waiting_of_request): `count`
    alike requests; the type it names by a gpu_type resource, else any; none for a request
    without GPUs or one no node could ever hold."""
    nodes = [node("v", FAST, 2), node("t", SLOW, 4)]
    assert waiting_of_request({"GPU": 1.0, "CPU": 1.0}, 2, nodes) == [Waiting(1.0, None)] * 2
    named = {"GPU": 1.0, f"gpu_type:{FAST}": 1.0}
    assert waiting_of_request(named, 1, nodes) == [Waiting(1.0, frozenset({FAST}))]
    assert waiting_of_request({"CPU": 4.0}, 3, nodes) == []
    assert waiting_of_request({"GPU": 8.0}, 1, nodes) == []  # no node has 8
    assert waiting_of_request({"GPU": 4.0, f"gpu_type:{FAST}": 1.0}, 1, nodes) == []


def test_another_jobs_request_blocks_a_move_only_for_a_type_it_can_use() -> None:
    """choose_moves counts other jobs' pending GPU requests like its own waiting trials: one
    bound to the freed type (or to any) keeps the move from taking the GPU; one bound to
    another type, or one needing more GPUs than are free, does not."""
    (theirs,) = waiting_of_group([(1.0, frozenset({FAST}))], one_node=False)
    assert choose_moves([running()], {FAST: 1.0}, [theirs], RULE) == []
    (elsewhere,) = waiting_of_group([(1.0, frozenset({SLOW}))], one_node=False)
    (big,) = waiting_of_group([(1.0, None), (1.0, None)], one_node=True)
    kept = choose_moves([running()], {FAST: 1.0}, [elsewhere, big], RULE)
    assert [m.key for m in kept] == ["long"]
