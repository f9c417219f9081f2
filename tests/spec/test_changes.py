"""Which spec changes `sweep resume` accepts: the search is frozen, the rest may change."""

from __future__ import annotations

from typing import Any

import pytest

from sweeps.errors import SpecError
from sweeps.spec.changes import check_resume_changes
from sweeps.spec.models import SweepSpec
from tests.conftest import small_spec


def spec(**changes: Any) -> SweepSpec:
    return SweepSpec.model_validate(small_spec(**changes))


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"search_space__learning_rate__high": 0.5}, "search_space.learning_rate.high"),
        ({"search_space__weight_decay": 0.01}, "search_space.weight_decay"),
        ({"metric": "val_loss"}, "metric"),
        ({"mode": "min"}, "mode"),
        ({"seed": 1}, "seed"),
        ({"trainable": "synthetic_mlp"}, "trainable"),
        ({"sampler": {"type": "random"}}, "sampler.type"),
        ({"sampler": {"type": "tpe", "n_startup_trials": 3}}, "sampler.n_startup_trials"),
        ({"scheduler__grace_period": 5}, "scheduler.grace_period"),
        ({"tracking": {"uri": "http://127.0.0.1:5000"}}, "tracking.uri"),
    ],
)
def test_a_change_to_the_search_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=f"field `{field}` changed"):
        check_resume_changes(spec(), spec(**changes), "spec.yaml", trials_so_far=3)


def test_harmless_changes_are_listed() -> None:
    changes = check_resume_changes(
        spec(),
        spec(num_samples=9, max_concurrent=1, failure={"max_retries": 3}, storage="/elsewhere"),
        "spec.yaml",
        trials_so_far=3,
    )
    assert [c.split(":")[0] for c in changes] == ["failure.max_retries", "max_concurrent", "num_samples"]


def test_num_samples_may_not_fall_below_the_trials_the_sweep_has() -> None:
    with pytest.raises(SpecError, match="already has 5 trials"):
        check_resume_changes(spec(), spec(num_samples=4), "spec.yaml", trials_so_far=5)
