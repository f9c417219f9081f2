"""The runner, the truthful study and ASHA through whole sweeps on a simulated backend (no Ray).

Fast: each sweep takes well under a second once the trainable's module is imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from sweeps.analysis import pareto_front
from sweeps.backend.simulated import SimulatedBackend
from sweeps.cli import main
from sweeps.iterations import BUDGET_RESULT_KEY
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.spec.loading import load_spec
from sweeps.store.journal import read_journal
from sweeps.store.state import read_state, sweep_paths
from sweeps.store.study_records import backend_trial_id
from tests.conftest import small_spec


def simulated_sweep(
    tmp_path: Path, budget: str, mode: str = "max"
) -> tuple[object, SimulatedBackend, object]:
    spec = small_spec(
        num_samples=12,
        mode=mode,
        storage=str(tmp_path / "results"),
        tracking={"enabled": False},
        scheduler={
            "type": "asha",
            "grace_period": 10 if budget == "iterations" else 640,
            "reduction_factor": 2,
            "budget": budget,
        },
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    loaded = load_spec(path, [])
    backend = SimulatedBackend()
    summary = run_sweep(loaded, RunOptions(live=False, backend=backend))
    return loaded, backend, summary


@pytest.mark.parametrize("budget", ["iterations", "samples"])
def test_a_simulated_sweep_tells_the_study_ledger_and_journal_the_same_story(
    tmp_path: Path, budget: str
) -> None:
    loaded, backend, summary = simulated_sweep(tmp_path, budget)
    spec = loaded.spec  # type: ignore[attr-defined]
    assert backend.started and backend.stopped
    trials = summary.trials  # type: ignore[attr-defined]
    assert sum(trials.values()) == 12 and trials["pruned"] > 0 and trials["completed"] > 0

    paths = sweep_paths(spec.storage, spec.name)
    study = optuna.load_study(study_name=spec.name, storage=paths.optuna_url)
    states = {t.user_attrs["backend_trial_id"]: t.state for t in study.trials}
    outcomes = {r["trial_id"]: r["outcome"] for r in summary.trial_records}  # type: ignore[attr-defined]
    expected = {"completed": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED}
    assert states == {trial_id: expected[outcome] for trial_id, outcome in outcomes.items()}

    # Every report reached the journal once, in order; Optuna's steps are in the budget unit.
    journal = read_journal(paths.directory / "results.jsonl")
    step_key = BUDGET_RESULT_KEY[budget] if budget != "epochs" else "iteration"
    for frozen in study.trials:
        trial_id = frozen.user_attrs["backend_trial_id"]
        iterations = [r["iteration"] for r in journal[trial_id]]
        assert iterations == sorted(set(iterations))
        assert set(frozen.intermediate_values) <= {int(r[step_key]) for r in journal[trial_id]}

    # A pruned trial was stopped by ASHA before its end; a completed one ran to its end.
    totals = {r["trial_id"]: r["iterations"] for r in summary.trial_records}  # type: ignore[attr-defined]
    for trial_id, outcome in outcomes.items():
        last = [d for d in backend.decisions if d[0] == trial_id][-1]
        assert last[1] == totals[trial_id]
        if outcome == "pruned":
            assert last[2] == "stop"
        else:
            assert last[1] == journal[trial_id][-1]["total_iterations"]
    assert read_state(paths)["state"] == "finished"


def test_the_best_trial_is_the_best_completed_one(tmp_path: Path) -> None:
    _, _, summary = simulated_sweep(tmp_path, "iterations")
    records = summary.trial_records  # type: ignore[attr-defined]
    completed = [r for r in records if r["outcome"] == "completed"]
    best = summary.best  # type: ignore[attr-defined]
    assert best is not None and best["trial_id"] in {r["trial_id"] for r in completed}


def test_a_two_objective_sweep_with_a_constraint_has_a_feasible_front_in_summary_and_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """MOASHA, the multi-objective study and the summary's front, end to end without Ray."""
    spec = small_spec(
        num_samples=12,
        storage=str(tmp_path / "results"),
        tracking={"log_model": False},
        metric=["val_accuracy", "cost"],
        mode=["max", "min"],
        constraints=["batch_width <= 64"],
        scheduler={"type": "asha", "grace_period": 10, "reduction_factor": 2},
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    loaded = load_spec(path, [])
    summary = run_sweep(loaded, RunOptions(live=False, backend=SimulatedBackend()))
    assert summary.trials["pruned"] > 0 and summary.trials["completed"] > 0
    front = summary.to_json()["pareto_front"]
    assert front and summary.best is not None and summary.best["trial_id"] == front[0]["trial_id"]
    accuracies = [member["values"]["val_accuracy"] for member in front]
    assert accuracies == sorted(accuracies, reverse=True)  # best first by the first objective
    assert all(member["config"]["batch_size"] <= 64 for member in front)  # infeasible trials never on it

    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    study = optuna.load_study(study_name=loaded.spec.name, storage=paths.optuna_url)
    assert len(study.directions) == 2
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(t.intermediate_values and t.user_attrs["sweep.objectives"] for t in pruned)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete and all(len(t.values) == 2 for t in complete)
    assert {backend_trial_id(t) for t in study.best_trials} == {m["trial_id"] for m in front}

    # MLflow: the front's runs are tagged, and the parent run holds the front as a table.
    client = MlflowClient(paths.embedded_tracking_uri)
    experiment = client.get_experiment_by_name(loaded.spec.name)
    tagged = client.search_runs([experiment.experiment_id], "tags.`sweep.pareto` = 'true'")
    assert sorted(r.data.tags["sweep.trial_id"] for r in tagged) == sorted(m["trial_id"] for m in front)
    parent = client.search_runs([experiment.experiment_id], "tags.`sweep.role` = 'parent'")[0]
    table = json.loads(
        Path(client.download_artifacts(parent.info.run_id, "pareto_front.json", str(tmp_path))).read_text()
    )
    assert table["columns"][:4] == ["trial_id", "run_name", "val_accuracy", "cost"]
    assert [row[0] for row in table["data"]] == [m["trial_id"] for m in front]

    # `sweep best`: the front as a table (the default), one config per member as YAML; `status` marks it.
    storage = str(tmp_path / "results")
    capsys.readouterr()
    assert main(["best", "tiny", "--storage", storage]) == 0
    table = capsys.readouterr().out
    assert "Pareto front of tiny" in table and "val_accuracy (max)" in table and "cost (min)" in table
    assert [
        line.split()[1]
        for line in table.splitlines()
        if line.split()[1:2] and line.split()[1].startswith("sim")
    ] == [m["trial_id"] for m in front]
    assert main(["best", "tiny", "--storage", storage, "--format", "yaml"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["trial_id"] for d in documents] == [m["trial_id"] for m in front]
    assert documents[0]["search_space"]["batch_size"] <= 64 and set(documents[0]["values"]) == {
        "val_accuracy",
        "cost",
    }
    assert main(["status", "tiny", "--storage", storage, "--wide"]) == 0
    status = capsys.readouterr().out
    marked = {line.split()[1] for line in status.splitlines() if " * " in line and line.split()[1:2]}
    assert marked == {m["trial_id"] for m in front} and f"Pareto front: {len(front)} trials" in status

    # sweeps.analysis.pareto_front(): the same front as a DataFrame.
    frame = pareto_front("tiny", storage)
    assert list(frame["trial_id"]) == [m["trial_id"] for m in front]
    assert list(frame.columns[:4]) == ["trial_id", "number", "val_accuracy", "cost"]
    assert list(frame["val_accuracy"]) == [m["values"]["val_accuracy"] for m in front]

    # `sweep report` draws the front (its members, the pruned trials marked) before the other plots.
    assert main(["report", "tiny", "--storage", storage, "--output", str(tmp_path / "report")]) == 0
    html = (tmp_path / "report" / "index.html").read_text()
    assert (tmp_path / "report" / "pareto_front.png").stat().st_size > 10_000 and "pareto_front.png" in html
