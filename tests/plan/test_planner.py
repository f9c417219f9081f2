"""The plan's figures and each of its warnings."""

from __future__ import annotations

import pytest

from sweeps.plan.planner import make_plan
from sweeps.spec.models import SweepSpec
from tests.conftest import small_spec


def plan_of(dataset_size: int = 10_000, drop_last: bool = False, **changes: object):
    spec = SweepSpec.model_validate(small_spec(**changes))
    return make_plan(spec, dataset_size, drop_last)


def space(batch_sizes: list[int], epochs: tuple[int, int]) -> dict:
    return {
        "batch_size": {"type": "categorical", "values": batch_sizes},
        "epochs": {"type": "int", "low": epochs[0], "high": epochs[1]},
        "learning_rate": 0.01,
    }


def test_batch_size_table_uses_the_vocabulary_example() -> None:
    plan = plan_of(search_space=space([64, 100], (1, 5)))
    rows = {row.batch_size: row for row in plan.batch_sizes}
    assert rows[100].iterations_per_epoch == 100
    assert rows[100].max_total_iterations == 500
    assert rows[64].iterations_per_epoch == 157
    assert rows[64].min_total_iterations == 157


def test_drop_last_changes_the_table() -> None:
    plan = plan_of(drop_last=True, search_space=space([64], (1, 5)))
    assert plan.batch_sizes[0].iterations_per_epoch == 156


def test_max_t_auto_is_the_longest_config() -> None:
    plan = plan_of(search_space=space([50, 100], (1, 4)), scheduler={"type": "asha", "grace_period": 10})
    assert plan.max_t == 4 * 200


@pytest.mark.parametrize("unit,expected_max_t", [("iterations", 800), ("samples", 40_000), ("epochs", 4)])
def test_max_t_auto_in_each_unit(unit: str, expected_max_t: float) -> None:
    plan = plan_of(
        search_space=space([50, 100], (1, 4)), scheduler={"type": "asha", "budget": unit, "grace_period": 1}
    )
    assert plan.max_t == expected_max_t


def test_samples_budget_favours_large_batches_in_iterations() -> None:
    plan = plan_of(
        search_space=space([32, 256], (1, 4)),
        scheduler={"type": "asha", "budget": "samples", "grace_period": 8192, "reduction_factor": 2},
    )
    first = plan.rungs[0].milestone_iterations_by_batch_size
    assert first == {32: 256, 256: 32}  # 8× fewer iterations at 8× the batch size


def test_expected_is_below_worst_case_with_asha() -> None:
    plan = plan_of(
        num_samples=40, search_space=space([16, 32], (1, 10)), scheduler={"type": "asha", "grace_period": 20}
    )
    assert plan.expected_iterations < plan.worst_case_iterations
    assert plan.saving_ratio > 1
    assert [r.expected_trials for r in plan.rungs] == sorted(
        (r.expected_trials for r in plan.rungs), reverse=True
    )


def test_no_scheduler_means_no_saving() -> None:
    plan = plan_of(scheduler={"type": "none"})
    assert plan.rungs == [] and plan.expected_iterations == plan.worst_case_iterations


def test_warning_grace_period_beyond_shortest_config() -> None:
    plan = plan_of(
        dataset_size=1438, search_space=space([256], (1, 10)), scheduler={"type": "asha", "grace_period": 20}
    )
    assert any("ASHA can never stop them" in w and "batch_size=256, epochs=1" in w for w in plan.warnings)


def test_warning_unreachable_rungs() -> None:
    plan = plan_of(
        search_space=space([100], (1, 2)), scheduler={"type": "asha", "grace_period": 100, "max_t": 2000}
    )
    assert any("cannot be reached" in w for w in plan.warnings)


def test_warning_max_t_cuts_configs() -> None:
    plan = plan_of(
        search_space=space([100], (1, 5)), scheduler={"type": "asha", "grace_period": 10, "max_t": 300}
    )
    assert any("silently cut" in w for w in plan.warnings)


def test_warning_batch_size_larger_than_dataset() -> None:
    plan = plan_of(dataset_size=100, search_space=space([64, 512], (1, 2)))
    assert any("batch_size 512 is larger than the training set" in w for w in plan.warnings)


def test_a_coherent_spec_has_no_warnings() -> None:
    plan = plan_of(search_space=space([100], (2, 5)), scheduler={"type": "asha", "grace_period": 50})
    assert plan.warnings == []


def test_json_has_the_documented_keys() -> None:
    data = plan_of().to_json()
    assert set(data) >= {
        "dataset_size",
        "drop_last",
        "batch_sizes",
        "budget_unit",
        "rungs",
        "max_t",
        "worst_case_iterations",
        "expected_iterations",
        "warnings",
    }
    assert set(data["batch_sizes"][0]) >= {
        "batch_size",
        "iterations_per_epoch",
        "min_total_iterations",
        "max_total_iterations",
    }
    assert set(data["rungs"][0]) == {"milestone", "milestone_iterations_by_batch_size", "expected_trials"}
