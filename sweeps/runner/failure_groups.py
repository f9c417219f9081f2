"""Failed trials grouped by their error, with what their configs share.

Twelve trials of which seven raise ``RuntimeError: CUDA out of memory`` for every batch
size of 128 and more read, in the summary, as one line:

    7 × RuntimeError: CUDA out of memory. Tried to allocate ... (batch_size ≥ 128 in 7 of 7)

A group is the trials whose error has the same first line (:func:`sweeps.outcomes.error_headline`).
What they *share* is the condition on one hyperparameter that best tells them from the
trials that did not fail: for numbers a threshold (``≥ t`` or ``≤ t``), for any value an
equality (``optimizer = adam``). A condition is scored by the fraction of the group that
meets it minus the fraction of the other trials that meet it, and shown only when that
difference is at least one half: "7 of 7" means little if the trials that completed
meet it too; a second condition is shown only when it scores about as well as the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sweeps.outcomes import Outcome, TrialRecord, error_headline

#: Groups shown in the summary; the rest are counted in one line.
GROUPS_SHOWN = 3
#: The least score (fraction of the group minus fraction of the others) a shared condition needs.
MIN_SCORE = 0.5
#: How much lower than the best condition's score a second one may be and still be shown.
CLOSE_SCORE = 0.1


@dataclass(frozen=True)
class FailureGroup:
    """The failed trials whose error starts with ``headline``, and what their configs share."""

    headline: str
    trial_ids: list[str]
    #: Conditions the configs share, best first: ``batch_size ≥ 128 in 7 of 7``.
    shared: list[str]

    def describe(self) -> str:
        shared = f" ({'; '.join(self.shared)})" if self.shared else ""
        return f"{len(self.trial_ids)} × {self.headline}{shared}"


def group_failures(records: Iterable[TrialRecord]) -> list[FailureGroup]:
    """The failed trials of ``records`` by error first line, the largest group first."""
    records = list(records)
    failed = [r for r in records if r.outcome == Outcome.FAILED]
    others = [r.config for r in records if r.outcome is not None and r.outcome != Outcome.FAILED]
    by_headline: dict[str, list[TrialRecord]] = {}
    for record in failed:
        by_headline.setdefault(error_headline(record.error) or "unknown error", []).append(record)
    groups = [
        FailureGroup(
            headline, [r.trial_id for r in members], shared_conditions([r.config for r in members], others)
        )
        for headline, members in by_headline.items()
    ]
    return sorted(groups, key=lambda g: -len(g.trial_ids))


def shared_conditions(group: list[dict[str, Any]], others: list[dict[str, Any]], limit: int = 2) -> list[str]:
    """At most ``limit`` conditions on one hyperparameter each that tell ``group`` from ``others``."""
    found: list[tuple[float, str]] = []
    for name in sorted({key for config in group for key in config}):
        best: tuple[float, str] | None = None
        for text, holds in _candidates(name, [c.get(name) for c in group]):
            met = sum(1 for c in group if holds(c.get(name)))
            score = met / len(group) - (
                sum(1 for c in others if holds(c.get(name))) / len(others) if others else 0.0
            )
            if best is None or score > best[0]:
                best = (score, f"{text} in {met} of {len(group)}")
        # With no other trial to compare with, every condition is met by every trial alike.
        if best is not None and best[0] >= MIN_SCORE and others:
            found.append(best)
    found.sort(key=lambda f: -f[0])
    # A second condition only when it tells the group apart about as well as the first: in
    # a dozen trials a learning rate can split 4 of 5 failures from 2 of 7 others by chance.
    return [text for score, text in found[:limit] if score >= found[0][0] - CLOSE_SCORE]


def _candidates(name: str, values: list[Any]) -> list[tuple[str, Callable[[Any], bool]]]:
    candidates: list[tuple[str, Callable[[Any], bool]]] = []
    for value in {repr(v): v for v in values}.values():
        candidates.append((f"{name} = {_shown(value)}", _equal_to(value)))
        if _is_number(value):
            candidates.append((f"{name} ≥ {_shown(value)}", _at_least(value)))
            candidates.append((f"{name} ≤ {_shown(value)}", _at_most(value)))
    return candidates


def _equal_to(value: Any) -> Callable[[Any], bool]:
    return lambda v: bool(v == value)


def _at_least(value: float) -> Callable[[Any], bool]:
    return lambda v: _is_number(v) and v >= value


def _at_most(value: float) -> Callable[[Any], bool]:
    return lambda v: _is_number(v) and v <= value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def failure_lines(records: Iterable[TrialRecord], shown: int = GROUPS_SHOWN) -> list[str]:
    """The summary's lines on failed trials: the largest groups, then a count of the rest."""
    groups = group_failures(records)
    lines = [group.describe() for group in groups[:shown]]
    rest = groups[shown:]
    if rest:
        lines.append(
            f"{sum(len(g.trial_ids) for g in rest)} more failed trial(s) with "
            f"{len(rest)} other error(s): see `sweep status`"
        )
    return lines
