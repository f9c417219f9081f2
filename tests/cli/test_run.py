"""`sweep run` end to end on a real local Ray, and every bad input that needs the trainable or Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from sweeps.cli import main
from sweeps.store.study_records import backend_trial_id
from tests.conftest import REPO, TradeoffSweep

pytestmark = pytest.mark.slow


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_prints_a_json_summary_with_the_documented_keys(ray_session, write_spec, capsys) -> None:
    spec = write_spec()
    code, out, _ = run_cli(capsys, "run", str(spec), "--json")
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert set(summary) >= {"name", "best", "trials", "iterations_used", "iterations_worst_case", "storage"}
    assert set(summary["best"]) == {"trial_id", "config", "value", "iterations"}
    assert set(summary["best"]["config"]) == {"batch_size", "epochs", "learning_rate"}
    trials = summary["trials"]
    assert trials["completed"] + trials["pruned"] + trials["failed"] + trials["diverged"] == 6
    assert 0 < summary["iterations_used"] <= summary["iterations_worst_case"]
    assert (Path(summary["storage"]) / "optuna.db").exists()


def test_run_prints_best_trial_and_asha_saving(ray_session, write_spec, capsys) -> None:
    spec = write_spec(name="human")
    code, out, _ = run_cli(capsys, "run", str(spec))
    assert code == 0
    assert "Best trial" in out and "val_accuracy" in out
    assert "Iterations:" in out and "ASHA saved" in out
    assert "Results:" in out


def test_a_sweep_without_a_scheduler_says_nothing_of_asha(ray_session, write_spec, capsys) -> None:
    spec = write_spec(
        name="unscheduled",
        num_samples=2,
        scheduler={"type": "none"},
        tracking={"enabled": False},
        search_space={"batch_size": 128, "epochs": 1, "learning_rate": 0.05},
    )
    code, out, _ = run_cli(capsys, "run", str(spec))
    assert code == 0
    out = " ".join(out.split())
    assert "ASHA" not in out, out
    assert "no early stopping: every trial ran to completion" in out and "Best trial" in out


def test_set_overrides_reach_the_sweep(ray_session, write_spec, capsys) -> None:
    spec = write_spec(name="overridden")
    code, out, _ = run_cli(
        capsys, "run", str(spec), "--set", "num_samples=2", "--set", "search_space.epochs=1", "--json"
    )
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert sum(summary["trials"].values()) == 2
    assert summary["best"]["config"]["epochs"] == 1


def test_a_short_trial_never_misses_its_final_report(ray_session, write_spec, capsys) -> None:
    """Batch size 256, 1 epoch, N = 1,500: 6 iterations, far below the first rung at 20."""
    spec = write_spec(
        name="short",
        trainable="synthetic_mlp",
        trainable_args={"n_samples": 1500},
        num_samples=2,
        search_space={
            "batch_size": 256,
            "epochs": 1,
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        },
        scheduler={"type": "asha", "grace_period": 20, "reduction_factor": 3},
    )
    code, out, _ = run_cli(capsys, "run", str(spec), "--json")
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["trials"]["completed"] == 2
    assert summary["best"]["iterations"] == 6


def test_optuna_study_holds_pruned_and_complete_states(ray_session, write_spec, capsys) -> None:
    spec = write_spec(
        name="truth",
        num_samples=10,
        search_space={
            "batch_size": 16,
            "epochs": {"type": "int", "low": 1, "high": 3},
            "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        },
        scheduler={"type": "asha", "grace_period": 10, "reduction_factor": 3},
    )
    code, out, _ = run_cli(capsys, "run", str(spec), "--json")
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    storage = Path(summary["storage"])
    study = optuna.load_study(study_name="truth", storage=f"sqlite:///{storage / 'optuna.db'}")
    states = [t.state for t in study.trials]
    assert len(states) == 10
    assert optuna.trial.TrialState.PRUNED in states and optuna.trial.TrialState.COMPLETE in states
    ipe = 90  # ceil(1438 / 16)
    for trial in study.trials:
        total = trial.params["epochs"] * ipe if "epochs" in trial.params else None
        steps = sorted(trial.intermediate_values)
        assert steps, "intermediate values are keyed by iteration"
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert steps[-1] == total and trial.value is not None
        elif trial.state == optuna.trial.TrialState.PRUNED:
            # Optuna itself records a pruned trial's last intermediate value as its value.
            assert steps[-1] < total
            assert trial.value in (None, trial.intermediate_values[steps[-1]])
    assert summary["trials"]["pruned"] == states.count(optuna.trial.TrialState.PRUNED)


@pytest.mark.parametrize("name, says", [("", "is empty"), ("x" * 300, "is 300 characters long")])
def test_an_empty_or_overlong_name_is_exit_2_with_the_rule(write_spec, capsys, name: str, says: str) -> None:
    # `--name ''` was ignored (the spec's name ran); 300 characters gave an OSError traceback.
    code, _, err = run_cli(capsys, "run", str(write_spec()), "--name", name)
    flat = " ".join(err.split())
    assert code == 2 and "field `name`" in flat and says in flat and "Traceback" not in err
    assert "letters, digits" in flat


def test_unknown_trainable_is_exit_2(write_spec, capsys) -> None:
    code, _, err = run_cli(capsys, "run", str(write_spec(trainable="no_such_thing")))
    assert code == 2
    assert "field `trainable`" in err and "no_such_thing" in err and "Traceback" not in err


def test_unimportable_module_path_is_exit_2(write_spec, capsys) -> None:
    code, _, err = run_cli(capsys, "run", str(write_spec(trainable="nowhere.module:train")))
    assert code == 2 and "cannot be imported" in err


def test_missing_trainable_file_is_exit_2(write_spec, capsys) -> None:
    code, _, err = run_cli(capsys, "run", str(write_spec(trainable="missing.py:train")))
    assert code == 2 and "does not exist" in err


def test_batch_size_larger_than_training_set_is_exit_2(write_spec, capsys) -> None:
    spec = write_spec(
        search_space={
            "batch_size": {"type": "categorical", "values": [64, 4096]},
            "epochs": 1,
            "learning_rate": 0.01,
        }
    )
    code, _, err = run_cli(capsys, "run", str(spec))
    assert code == 2
    assert "search_space.batch_size" in err and "4096" in err and "N = 1438" in err


def test_resources_beyond_the_cluster_are_exit_2(ray_session, write_spec, capsys) -> None:
    code, _, err = run_cli(capsys, "run", str(write_spec(name="greedy", resources={"cpu": 64, "gpu": 0})))
    assert code == 2
    assert "field `resources`" in err and "cpu=64" in err


def test_trainable_that_never_reports_the_metric_is_exit_2(ray_session, write_spec, tmp_path, capsys) -> None:
    (tmp_path / "silent.py").write_text(
        "from sweeps import trainable\n\n"
        "@trainable(dataset_size=1000)\n"
        "def train(config, ctx):\n"
        "    for i in range(1, ctx.shape.total_iterations + 1):\n"
        "        if ctx.should_report(i):\n"
        "            ctx.report(iteration=i, loss=1.0 / i)\n"
    )
    spec = write_spec(name="silent", trainable="silent.py:train", num_samples=2, failure={"max_retries": 0})
    code, _, err = run_cli(capsys, "run", str(spec))
    assert code == 2
    assert "`val_accuracy`" in err and "['loss']" in err and "Traceback" not in err


def test_cli_process_prints_no_traceback_and_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nmode: sideways\n")
    process = subprocess.run(
        [sys.executable, "-m", "sweeps", "run", str(spec)], capture_output=True, text=True, cwd=REPO
    )
    assert process.returncode == 2
    assert "Traceback" not in process.stderr and str(spec) in process.stderr


def test_json_stdout_holds_only_the_summary_though_ray_prints_a_dead_workers_error(tmp_path: Path) -> None:
    """Ray prints the errors its cluster publishes (here: a trial's worker process died) to
    the driver's stdout, even after the summary; with `--json` they must go to stderr.

    A real process, not `main()` in-process: only a real exit shuts Ray's printing thread down,
    and the lost-node error that broke a `--json` reader in CI came during that shut-down.
    """
    from tests.runner.test_failures import behaving_spec

    attempts = tmp_path / "attempts"
    attempts.mkdir()
    spec = behaving_spec(
        tmp_path,
        "dies",
        "ok",
        num_samples=1,
        trainable_args={"report_every": 1, "die_once_at": 5, "attempts_dir": str(attempts)},
        search_space={"batch_size": 100, "epochs": 1, "learning_rate": 0.01},
        failure={"max_retries": 1, "max_failed_fraction": 1.0},
    )
    path = tmp_path / "dies.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    process = subprocess.run(
        [sys.executable, "-m", "sweeps", "run", str(path), "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert [f.read_text().splitlines() for f in attempts.iterdir()] == [
        ["attempt", "attempt"]
    ]  # it died once
    assert "A worker died or was killed" in process.stderr  # Ray did print it: it went to stderr
    [line] = process.stdout.splitlines()
    assert json.loads(line)["trials"]["completed"] == 1


def test_a_two_objective_sweep_with_a_constraint_end_to_end(tradeoff_sweep: TradeoffSweep) -> None:
    """One real sweep (local Ray, MOASHA, MLflow) with two objectives and a constraint: the study
    has two directions, truthful PRUNED trials with every objective per step and COMPLETE ones
    with both values; `--json` has the front; MLflow tags its runs and holds it as a table."""
    from mlflow import MlflowClient

    from sweeps.store.state import sweep_paths

    summary = tradeoff_sweep.summary
    front = summary["pareto_front"]
    assert front and summary["best"]["trial_id"] == front[0]["trial_id"]
    assert all(set(member["values"]) == {"val_accuracy", "train_loss"} for member in front)

    paths = sweep_paths(summary["storage"].rsplit("/", 1)[0], "tradeoff")
    study = optuna.load_study(study_name="tradeoff", storage=paths.optuna_url)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    states = {t.state for t in study.trials}
    assert optuna.trial.TrialState.PRUNED in states, "ASHA pruned nothing: the sweep checks no PRUNED trial"
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert trial.intermediate_values and trial.user_attrs["sweep.objectives"]
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert len(trial.values) == 2
            assert (
                list(trial.constraints) == ["val_loss <= 1000"] and trial.constraints["val_loss <= 1000"] <= 0
            )
    assert {backend_trial_id(t) for t in study.best_trials} == {m["trial_id"] for m in front}

    client = MlflowClient(paths.embedded_tracking_uri)
    experiment = client.get_experiment_by_name("tradeoff")
    tagged = client.search_runs([experiment.experiment_id], "tags.`sweep.pareto` = 'true'")
    assert sorted(r.data.tags["sweep.trial_id"] for r in tagged) == sorted(m["trial_id"] for m in front)
    parent = client.search_runs([experiment.experiment_id], "tags.`sweep.role` = 'parent'")[0]
    local = client.download_artifacts(parent.info.run_id, "pareto_front.json", str(paths.directory))
    assert [row[0] for row in json.loads(Path(local).read_text())["data"]] == [m["trial_id"] for m in front]
