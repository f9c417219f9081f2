"""Pareto ranking of value vectors: non-dominated sorting and the crowding-distance tie-break.

Several objectives have no single order, so multi-objective ASHA (Schmucker et al.,
"Multi-objective Asynchronous Successive Halving", 2021) ranks the vectors recorded at a
rung instead: first by non-dominated sorting (Deb et al., "A Fast and Elitist
Multiobjective Genetic Algorithm: NSGA-II", 2002), the Pareto front first, then the front
of what is left, and so on; within a front by a tie-break.

The tie-break is NSGA-II's **crowding distance**, larger first, then the order the
vectors were recorded in (earlier first). We chose it over MOASHA's ε-net because:

- it is the rule Optuna's own NSGA-II sampler uses, so the study's sampler and our
  scheduler prefer the same members of a front;
- it needs no scale: each objective's distance is divided by that objective's range in
  the front, so accuracy in [0, 1] and a parameter count in millions weigh the same,
  whereas the ε-net's greedy farthest-point choice needs a distance between vectors of
  different units;
- it is cheap (O(m n log n)) and deterministic, so a resumed sweep replaying its rungs
  ranks exactly as the first run did.

A front's extremes (best in some objective) get an infinite distance and so always rank
first within their front: the trade-off's ends are never cut for being "crowded".

Every vector here is **signed so that higher is better** in each objective (a minimised
objective negated), as :mod:`sweeps.search.asha` stores values. NaN never dominates and
is dominated by every finite vector (a vector with a NaN sorts after every one without).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Vector = Sequence[float]


def dominates(a: Vector, b: Vector) -> bool:
    """Whether ``a`` is at least as good as ``b`` in every objective and better in one (higher is better)."""
    if _has_nan(a):
        return False
    if _has_nan(b):
        return True
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


def non_dominated_fronts(points: Sequence[Vector]) -> list[list[int]]:
    """The indices of ``points`` by front: the Pareto front first (Deb's fast non-dominated sort).

    Each front lists its indices in ascending order."""
    count = len(points)
    dominated_by: list[list[int]] = [[] for _ in range(count)]  # i → the points i dominates
    domination_count = [0] * count  # i → how many points dominate i
    for i in range(count):
        for j in range(i + 1, count):
            if dominates(points[i], points[j]):
                dominated_by[i].append(j)
                domination_count[j] += 1
            elif dominates(points[j], points[i]):
                dominated_by[j].append(i)
                domination_count[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(count) if domination_count[i] == 0]
    while current:
        fronts.append(sorted(current))
        following = []
        for i in current:
            for j in dominated_by[i]:
                domination_count[j] -= 1
                if domination_count[j] == 0:
                    following.append(j)
        current = following
    return fronts


def crowding_distances(points: Sequence[Vector]) -> list[float]:
    """NSGA-II's crowding distance of each point within its front (``points`` is one front).

    Per objective, the points are ordered by value; the two ends get infinity and each
    other point the gap between its neighbours divided by the objective's range. The
    distance is the sum over objectives. Fewer than three points are all ends."""
    count = len(points)
    if count == 0:
        return []
    distances = [0.0] * count
    for objective in range(len(points[0])):
        order = sorted(range(count), key=lambda i: (points[i][objective], i))
        low, high = points[order[0]][objective], points[order[-1]][objective]
        distances[order[0]] = distances[order[-1]] = math.inf
        if high == low or not math.isfinite(high - low):
            continue
        for position in range(1, count - 1):
            gap = points[order[position + 1]][objective] - points[order[position - 1]][objective]
            distances[order[position]] += gap / (high - low)
    return distances


def pareto_order(points: Sequence[Vector]) -> list[int]:
    """All indices of ``points``, best first: by front, then crowding distance (larger first),
    then index (earlier first)."""
    ranked: list[int] = []
    for front in non_dominated_fronts(points):
        distances = crowding_distances([points[i] for i in front])
        ranked.extend(
            i for _, i in sorted(zip(distances, front, strict=True), key=lambda pair: (-pair[0], pair[1]))
        )
    return ranked


def pareto_front(points: Sequence[Vector]) -> list[int]:
    """The indices of the non-dominated points, ascending (none with a NaN, unless all have one)."""
    fronts = non_dominated_fronts(points)
    return [i for i in fronts[0] if not _has_nan(points[i])] if fronts else []


def _has_nan(vector: Vector) -> bool:
    return any(math.isnan(v) for v in vector)
