"""Non-dominated sorting, crowding distance and MOASHA's rung decisions, against brute force."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from sweeps.search.asha import BELOW_CUTOFF, CONTINUE, STOP, AshaBrackets, ParetoRungs
from sweeps.search.pareto import (
    crowding_distances,
    dominates,
    non_dominated_fronts,
    pareto_front,
    pareto_order,
)


def brute_force_fronts(points: list[tuple[float, ...]]) -> list[list[int]]:
    """Peel the front off: the points no remaining point dominates, again and again."""
    left, fronts = set(range(len(points))), []
    while left:
        front = sorted(i for i in left if not any(dominates(points[j], points[i]) for j in left if j != i))
        fronts.append(front)
        left -= set(front)
    return fronts


def brute_force_dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=False)) and a != b


def random_points(seed: int, count: int, objectives: int, ties: bool) -> list[tuple[float, ...]]:
    generator = random.Random(seed)
    draw = (lambda: float(generator.randint(0, 4))) if ties else generator.random
    return [tuple(draw() for _ in range(objectives)) for _ in range(count)]


@pytest.mark.parametrize("seed", range(40))
def test_fronts_match_peeling_on_random_points(seed: int) -> None:
    points = random_points(seed, 1 + seed % 25, 2 + seed % 2, ties=seed % 3 == 0)
    for a, b in itertools.product(points, repeat=2):
        assert dominates(a, b) == brute_force_dominates(a, b)
    assert non_dominated_fronts(points) == brute_force_fronts(points)
    assert pareto_front(points) == brute_force_fronts(points)[0]


def test_crowding_distance_gives_the_ends_infinity_and_the_rest_their_normalised_gaps() -> None:
    front = [(0.0, 4.0), (1.0, 3.0), (3.0, 1.0), (4.0, 0.0)]
    distances = crowding_distances(front)
    assert distances[0] == distances[3] == math.inf
    # (1, 3): gaps 3/4 in each objective; (3, 1): likewise.
    assert distances[1] == pytest.approx(1.5) and distances[2] == pytest.approx(1.5)


def test_pareto_order_is_front_then_crowding_then_arrival() -> None:
    points = [(1.0, 1.0), (0.0, 3.0), (2.0, 2.0), (3.0, 0.0), (2.5, 1.5), (0.5, 0.5)]
    # Front: 1, 2, 4, 3 (ends 1 and 3 first, in index order), then 0, then 5.
    order = pareto_order(points)
    assert order[:2] == [1, 3]
    assert set(order[2:4]) == {2, 4} and order[4:] == [0, 5]


def test_nan_never_dominates_and_sorts_last() -> None:
    points = [(math.nan, 1.0), (0.0, 0.0)]
    assert non_dominated_fronts(points) == [[1], [0]]
    assert pareto_front([(math.nan, 1.0)]) == []


def brute_force_keeps(recorded: list[tuple[float, ...]], eta: float) -> list[bool]:
    """Whether the last recorded vector is in the top max(1, ⌊n/η⌋) of the rung by
    (front, -crowding distance, arrival): computed from the peeled fronts."""
    ranked = []
    for front in brute_force_fronts(recorded):
        distances = crowding_distances([recorded[i] for i in front])
        ranked += [i for _, i in sorted(zip(distances, front, strict=False), key=lambda p: (-p[0], p[1]))]
    kept = max(1, int(len(recorded) // eta))
    return [ranked.index(len(recorded) - 1) < kept]


@pytest.mark.parametrize("modes", [("max", "min"), ("min", "min"), ("max", "max", "min")])
@pytest.mark.parametrize("seed", range(8))
def test_every_moasha_decision_matches_a_brute_force_reference(modes: tuple[str, ...], seed: int) -> None:
    eta, milestones = 2.0, [1.0, 2.0, 4.0]
    rungs = ParetoRungs(milestones, eta, 8.0, modes, [f"m{i}" for i in range(len(modes))])
    generator = random.Random(seed)
    at_rung: dict[float, list[tuple[float, ...]]] = {m: [] for m in milestones}
    seen: dict[float, set[str]] = {m: set() for m in milestones}
    alive = {f"t{i}": 0.0 for i in range(12)}
    while alive:
        trial = generator.choice(sorted(alive))
        budget = alive[trial] + generator.choice([1.0, 2.0])
        values = tuple(round(generator.random(), 1) for _ in modes)
        decision = rungs.judge_vector(trial, budget, values)
        if budget >= 8.0:
            assert decision.action == STOP
            del alive[trial]
            continue
        # The highest milestone reached that the trial had no value at yet.
        newly = next(
            (m for m in sorted(milestones, reverse=True) if budget >= m and trial not in seen[m]), None
        )
        if newly is not None:
            seen[newly].add(trial)
        if decision.milestone is None:
            assert newly is None
            assert decision.action == CONTINUE
        else:
            assert decision.milestone == newly
            signed = tuple(v if mode == "max" else -v for v, mode in zip(values, modes, strict=False))
            at_rung[decision.milestone].append(signed)
            expected = brute_force_keeps(at_rung[decision.milestone], eta)[0]
            assert (decision.action == CONTINUE) == expected
            if decision.action == STOP:
                assert decision.reason == BELOW_CUTOFF
                assert decision.explanation()["rung_values"] == list(values)
        alive[trial] = budget
        if decision.action == STOP:
            del alive[trial]


def test_a_young_rung_keeps_only_its_front_s_best_ranked() -> None:
    rungs = ParetoRungs([1.0], 3.0, 9.0, ("max", "min"), ("acc", "size"))
    assert rungs.judge_vector("a", 1, (0.5, 10)).action == CONTINUE
    assert rungs.judge_vector("b", 1, (0.4, 20)).action == STOP  # dominated by a
    # c is on the front with a, both ends of it (infinite crowding): the earlier one ranks first.
    decision = rungs.judge_vector("c", 1, (0.9, 30))
    assert decision.action == STOP and decision.rank == 1 and decision.kept == 1


def test_replaying_a_journal_rebuilds_moasha_rungs_and_the_next_decisions() -> None:
    def build() -> AshaBrackets:
        return AshaBrackets([[1.0, 3.0]], 3.0, 9.0, "max", objectives=[("acc", "max"), ("size", "min")])

    live, journal = build(), {}
    generator = random.Random(3)
    for i in range(10):
        result = {"iteration": 1 + i % 3, "acc": generator.random(), "size": generator.random(), "other": 1}
        live.judge_result(f"t{i}", result["iteration"], result, "acc")
        journal[f"t{i}"] = [result]
    resumed = build()
    assert resumed.replay(journal, "acc", "iterations") == sum(
        1 for r in journal.values() if r[0]["iteration"] >= 1
    )
    assert [b.vectors for b in resumed.brackets] == [b.vectors for b in live.brackets]  # type: ignore[attr-defined]
    probe = {"iteration": 3, "acc": 0.5, "size": 0.5}
    assert live.judge_result("new", 3, probe, "acc") == resumed.judge_result("new", 3, probe, "acc")


def test_a_result_without_every_objective_is_not_judged() -> None:
    brackets = AshaBrackets([[1.0]], 3.0, 9.0, "max", objectives=[("acc", "max"), ("size", "min")])
    assert brackets.multi_objective
    assert brackets.judge_result("a", 1, {"acc": 0.5}, "acc") is None
    assert brackets.judge_result("a", 1, {"acc": 0.5, "size": math.nan}, "acc") is None
    single = AshaBrackets([[1.0]], 3.0, 9.0, "max")
    assert not single.multi_objective
    assert single.judge_result("a", 1, {"size": 1}, "acc") is None
    decision = single.judge_result("a", 1, {"acc": 0.5}, "acc")
    assert decision is not None and decision.action == CONTINUE and decision.values is None
