"""A real sweep with `learning_rate.scale`: every trial's effective and base learning rates
follow the rule exactly, as MLflow, the Optuna study, `sweep plan --json`, `sweep status`,
`sweep best`, the analysis frames and a resume's rebuild from the study each record them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from sweeps.cli import main
from sweeps.spec.loading import load_spec
from tests.conftest import small_spec

pytestmark = pytest.mark.slow

REFERENCE = 64
LOW, HIGH = 1e-3, 1e-1
BATCH_SIZES = [32, 64, 128, 256]


def expected_rate(rule: str, base: float, batch_size: int) -> float:
    """The rule written out again, independently of sweeps.spec.scaling."""
    ratio = batch_size / REFERENCE
    return base * (ratio if rule == "linear" else math.sqrt(ratio))


@pytest.fixture(scope="module", params=["linear", "sqrt"])
def scaled_sweep(
    request: pytest.FixtureRequest, ray_session: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    rule = request.param
    folder = tmp_path_factory.mktemp(f"scaled-{rule}")
    spec = small_spec(
        name=f"scaled-{rule}",
        num_samples=5,
        storage=str(folder / "results"),
        search_space={
            "batch_size": {"type": "categorical", "values": BATCH_SIZES},
            "epochs": {"type": "int", "low": 1, "high": 2},
            "learning_rate": {
                "type": "float",
                "low": LOW,
                "high": HIGH,
                "log": True,
                "scale": {"rule": rule, "reference_batch_size": REFERENCE},
            },
        },
        tracking={"log_model": False},
    )
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["run", str(path), "--json"]) == 0
    return {"rule": rule, "spec": path, "storage": folder / "results", "name": spec["name"]}


def child_runs(sweep: dict[str, Any]) -> dict[str, dict[str, str]]:
    """MLflow params of each trial's child run, by Ray trial id."""
    client = MlflowClient(f"sqlite:///{sweep['storage'] / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(sweep["name"])
    runs = client.search_runs([experiment.experiment_id], "tags.`sweep.role` = 'trial'", max_results=100)
    return {run.data.tags["sweep.trial_id"]: dict(run.data.params) for run in runs}


def study_trials(sweep: dict[str, Any]) -> list[optuna.trial.FrozenTrial]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{sweep['storage'] / sweep['name'] / 'optuna.db'}"
    return optuna.load_study(study_name=sweep["name"], storage=url).get_trials()


def test_mlflow_and_the_study_hold_effective_and_base_rates_by_the_rule(scaled_sweep: dict[str, Any]) -> None:
    runs, trials = child_runs(scaled_sweep), study_trials(scaled_sweep)
    assert len(trials) == 5 and set(runs) == {t.user_attrs["backend_trial_id"] for t in trials}
    for trial in trials:
        # The study samples (and keeps) the base value, over the spec's range.
        assert "learning_rate" not in trial.params
        base = trial.params["learning_rate_base"]
        distribution = trial.distributions["learning_rate_base"]
        assert (distribution.low, distribution.high, distribution.log) == (LOW, HIGH, True)
        params = runs[trial.user_attrs["backend_trial_id"]]
        batch_size = int(params["batch_size"])
        assert batch_size == trial.params["batch_size"]
        assert float(params["learning_rate_base"]) == base
        assert float(params["learning_rate"]) == expected_rate(scaled_sweep["rule"], base, batch_size)


def test_each_rate_lies_in_the_range_sweep_plan_shows_for_its_batch_size(
    scaled_sweep: dict[str, Any], capsys: Any
) -> None:
    assert main(["plan", str(scaled_sweep["spec"]), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["learning_rate_scale"] == {"rule": scaled_sweep["rule"], "reference_batch_size": REFERENCE}
    ranges = {row["batch_size"]: row["learning_rate_range"] for row in plan["batch_sizes"]}
    assert set(ranges) == set(BATCH_SIZES)
    for batch_size, (low, high) in ranges.items():
        assert [low, high] == [
            expected_rate(scaled_sweep["rule"], LOW, batch_size),
            expected_rate(scaled_sweep["rule"], HIGH, batch_size),
        ]
    for params in child_runs(scaled_sweep).values():
        low, high = ranges[int(params["batch_size"])]
        assert low <= float(params["learning_rate"]) <= high


def test_sweep_best_exports_the_effective_rate_fixed_and_the_base_beside_it(
    scaled_sweep: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    storage = str(scaled_sweep["storage"])
    assert main(["best", scaled_sweep["name"], "--storage", storage, "--format", "json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    params = child_runs(scaled_sweep)[exported["trial_id"]]
    assert exported["search_space"]["learning_rate"] == float(params["learning_rate"])
    assert exported["learning_rate_base"] == float(params["learning_rate_base"])
    assert "learning_rate_base" not in exported["search_space"]
    assert exported["learning_rate_scale"] == {
        "rule": scaled_sweep["rule"],
        "reference_batch_size": REFERENCE,
    }

    assert main(["best", scaled_sweep["name"], "--storage", storage, "--format", "yaml"]) == 0
    text = capsys.readouterr().out
    assert "`learning_rate` is the effective value" in text
    fixed = yaml.safe_load(text)["search_space"]
    assert fixed == exported["search_space"]
    again = tmp_path / "again.yaml"  # the fixed values train the same config without the rule
    again.write_text(
        yaml.safe_dump({**yaml.safe_load(scaled_sweep["spec"].read_text()), "search_space": fixed})
    )
    assert load_spec(again).spec.search_space["learning_rate"] == float(params["learning_rate"])


def test_status_the_analysis_frames_and_the_report_show_both_rates(
    scaled_sweep: dict[str, Any], capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sweeps.analysis import load
    from sweeps.analysis.report import all_trials, best_trials, render_html

    data = load(scaled_sweep["name"], storage=scaled_sweep["storage"])
    assert data.hyperparameters == ["batch_size", "epochs", "learning_rate", "learning_rate_base"]
    runs = child_runs(scaled_sweep)
    for row in data.trials.itertuples():
        assert row.learning_rate == float(runs[row.trial_id]["learning_rate"])
        assert row.learning_rate == expected_rate(
            scaled_sweep["rule"], row.learning_rate_base, row.batch_size
        )
    assert {"learning_rate", "learning_rate_base"} <= set(data.best_config())
    assert {"learning_rate", "learning_rate_base"} <= set(best_trials(data).columns) & set(
        all_trials(data).columns
    )
    html = render_html(data, [])
    assert "learning_rate_base: " in html and "<th>learning_rate_base</th>" in html

    monkeypatch.setenv("COLUMNS", "400")  # rich would cut the config column short
    assert main(["status", scaled_sweep["name"], "--storage", str(scaled_sweep["storage"])]) == 0
    assert "learning_rate_base=" in capsys.readouterr().out


def test_a_resume_rebuilds_each_config_from_the_study_by_the_rule(scaled_sweep: dict[str, Any]) -> None:
    from sweeps.ray_backend import RayBackend
    from sweeps.runner.resume import prepare_resume

    # Asking for more trials than the finished sweep has makes it resumable; nothing runs here.
    _, resumption = prepare_resume(
        scaled_sweep["storage"], scaled_sweep["name"], ["num_samples=7"], backend=RayBackend()
    )
    runs = child_runs(scaled_sweep)
    assert len(resumption.trials) == 5 and len(resumption.records) == 5
    rebuilt = dict(resumption.trials)
    for record in resumption.records:
        assert record.config == rebuilt[record.trial_id]
        params = runs[record.trial_id]
        assert record.config["learning_rate"] == float(params["learning_rate"])
        assert record.config["learning_rate_base"] == float(params["learning_rate_base"])
