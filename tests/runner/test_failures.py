"""Failures inside trials: raising, diverging, and metrics that go missing or have the wrong type."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeps.cli import main
from sweeps.ray_backend import RayBackend
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.spec.loading import load_spec
from sweeps.store.state import read_state, sweep_paths
from tests.conftest import small_spec
from tests.runner.behaving_trainable import OUT_OF_MEMORY

BEHAVING = f"{Path(__file__).with_name('behaving_trainable.py')}:train"
SGD_DIGITS = f"{Path(__file__).with_name('sgd_digits.py')}:train"


def behaving_spec(folder: Path, name: str, behaviour: str, **changes: Any) -> dict[str, Any]:
    spec = small_spec(
        name=name,
        storage=str(folder / "results"),
        trainable=BEHAVING,
        num_samples=6,
        seed=11,
        trainable_args={"behaviour": behaviour, "threshold": 0.03},
        search_space={
            "batch_size": 100,
            "epochs": 2,
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        sampler={"type": "random"},
        scheduler={"type": "none"},
    )
    spec.update(changes)
    return spec


def run(folder: Path, spec: dict[str, Any]) -> tuple[Any, Any]:
    path = folder / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    loaded = load_spec(path, [])
    return loaded, run_sweep(loaded, RunOptions(RayBackend(), live=False, overwrite=True))


def study_trials(storage: Path, name: str) -> list[Any]:
    import optuna

    return optuna.load_study(
        study_name=name, storage=f"sqlite:///{storage / name / 'optuna.db'}"
    ).get_trials()


def child_runs(storage: Path, name: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{storage / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id])
    return [r for r in runs if r.data.tags.get("sweep.role") == "trial"]


@pytest.mark.slow
def test_a_raising_trainable_fails_everywhere_is_retried_and_the_sweep_carries_on(
    ray_session: Any,
    tmp_path: Path,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 24's case: batch sizes of 128 and more raise `CUDA out of memory`."""
    from mlflow.tracking import MlflowClient

    attempts = tmp_path / "attempts"
    attempts.mkdir()
    spec = behaving_spec(
        tmp_path, "raising", "out_of_memory", failure={"max_retries": 2, "max_failed_fraction": 1.0}
    )
    spec["trainable_args"].update(attempts_dir=str(attempts), oom_batch_size=128)
    spec["search_space"]["batch_size"] = {"type": "categorical", "values": [16, 32, 64, 128, 256]}
    path = tmp_path / "raising.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["run", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    storage = tmp_path / "results"
    trials = study_trials(storage, "raising")
    failed = [t for t in trials if t.state.name == "FAIL"]
    finished = sum(t.state.name == "COMPLETE" for t in trials)
    assert failed and finished, [t.params for t in trials]  # the sweep carried on
    assert all(t.user_attrs["sweep_record"]["outcome"] == "failed" for t in failed)
    assert all(t.params["batch_size"] >= 128 for t in failed)
    headline = f"RuntimeError: {OUT_OF_MEMORY}"
    # The summary: one group, its count, and what the failing configs share ("= 128" when
    # every failing trial drew 128, "≥ 128" when some drew 256).
    shared = f"batch_size {'=' if {t.params['batch_size'] for t in failed} == {128} else '≥'} 128"
    assert f"{len(failed)} × {headline} ({shared} in {len(failed)} of {len(failed)})" in out, out
    # The study: each FAIL trial says why (and stays FAIL).
    assert {t.user_attrs.get("error") for t in failed} == {headline}
    # 1 attempt + max_retries retries for each failing trial, 1 for the others.
    lines = sorted(len(f.read_text().splitlines()) for f in attempts.iterdir())
    assert lines == [1] * finished + [3] * len(failed), lines
    client = MlflowClient(f"sqlite:///{storage / 'mlflow.db'}")
    failed_runs = [r for r in child_runs(storage, "raising") if r.data.tags["sweep.state"] == "failed"]
    assert len(failed_runs) == len(failed) and {r.info.status for r in failed_runs} == {"FAILED"}
    error = Path(
        client.download_artifacts(failed_runs[0].info.run_id, "error.txt", str(tmp_path))
    ).read_text()
    assert "behaving_trainable.py" in error and "CUDA out of memory" in error  # the stack
    # `sweep status` at 80 columns: every error in full, under its trial, no line wider than 80.
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["status", "raising", "--storage", str(storage)]) == 0
    status = capsys.readouterr().out
    assert max(len(line) for line in status.splitlines()) <= 80
    assert "".join(status.split()).count("".join(headline.split())) == len(failed)


@pytest.mark.slow
def test_too_many_failed_trials_abort_the_sweep_with_a_summary(
    ray_session: Any, tmp_path: Path, capsys: Any
) -> None:
    spec = behaving_spec(
        tmp_path,
        "doomed",
        "raise_above",
        num_samples=8,
        failure={"max_retries": 0, "max_failed_fraction": 0.25},
    )
    spec["trainable_args"]["threshold"] = 0.0  # every trial raises
    path = tmp_path / "doomed.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "Sweep doomed aborted after" in out and "finished" not in out.splitlines()[1]
    assert (
        "Aborted:" in out
        and "3 trials failed, more than failure.max_failed_fraction allows (2)" in " ".join(out.split())
    )
    assert read_state(sweep_paths(tmp_path / "results", "doomed"))["state"] == "aborted"
    trials = len(study_trials(tmp_path / "results", "doomed"))
    assert trials < 8  # it stopped creating trials
    # An aborted sweep is not resumed: its failed trials would abort it again at once.
    assert main(["resume", "doomed", "--storage", str(tmp_path / "results")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "aborted (3 trials failed" in err and "cannot be resumed" in err and "--overwrite" in err, err
    assert "Traceback" not in err
    assert read_state(sweep_paths(tmp_path / "results", "doomed"))["state"] == "aborted"
    assert len(study_trials(tmp_path / "results", "doomed")) == trials  # nothing touched


@pytest.mark.slow
def test_a_learning_rate_of_10_diverges_without_crashing_anything(
    ray_session: Any, tmp_path: Path, capsys: Any
) -> None:
    spec = small_spec(
        name="lr10",
        storage=str(tmp_path / "results"),
        trainable=SGD_DIGITS,
        metric="val_mse",
        mode="min",
        num_samples=4,
        seed=5,
        sampler={"type": "random"},
        scheduler={"type": "none"},
        search_space={
            "batch_size": 64,
            "epochs": 2,
            "learning_rate": {"type": "categorical", "values": [0.01, 10.0]},
        },
    )
    path = tmp_path / "lr10.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["run", str(path)]) == 0
    assert "diverged" in capsys.readouterr().out
    storage = tmp_path / "results"
    trials = study_trials(storage, "lr10")
    diverged = [t for t in trials if t.params["learning_rate"] == 10.0]
    assert diverged and all(
        t.state.name == "FAIL" and t.user_attrs["sweep_record"]["outcome"] == "diverged" for t in diverged
    )
    assert all(t.state.name == "COMPLETE" for t in trials if t.params["learning_rate"] == 0.01)
    runs = {r.data.tags["sweep.trial_id"]: r for r in child_runs(storage, "lr10")}
    for trial in diverged:
        run = runs[trial.user_attrs["backend_trial_id"]]
        assert (run.data.tags["sweep.state"], run.info.status) == ("diverged", "FAILED")
        # Stopped at its first report (the end of epoch 1 here), not trained on to iteration 46.
        assert int(run.data.tags["sweep.stopped_at_iteration"]) == 23
    # The report reads MLflow's 1.797e308 for inf back as inf, draws every plot without the
    # diverged trials' values (parallel_coordinates raised OverflowError) and marks them.
    from sweeps.analysis import load, plots

    data = load("lr10", storage=storage)
    marked = data.trials.set_index("trial_id")["diverged"]
    assert {t.user_attrs["backend_trial_id"] for t in diverged} == set(marked[marked].index)
    assert not data.trials.loc[data.trials["diverged"], "value"].map(math.isfinite).any()
    assert (
        plots.parallel_coordinates(data)
        .axes[0]
        .get_title()
        .endswith(f"{len(diverged)} diverged trial(s) not drawn: their final value is NaN or infinite")
    )
    assert main(["report", "lr10", "--storage", str(storage), "--output", str(tmp_path / "report")]) == 0
    assert "diverged" in (tmp_path / "report" / "index.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    "behaviour, spec_changes, says",
    [
        ("drop_metric", {}, ["reported ['val_loss'] at iteration 20", "`val_accuracy`"]),
        ("string_metric", {}, ["(str) at iteration 10", "`val_accuracy`"]),
        # A second objective it never reports: the Ray trial's context demands every one.
        (
            "ok",
            {"metric": ["val_accuracy", "latency_ms"], "mode": ["max", "min"]},
            ["never the sweep's objective(s) `latency_ms` (`metric` lists val_accuracy, latency_ms)"],
        ),
    ],
    ids=["drop-metric", "string-metric", "missing-objective"],
)
def test_a_metric_gone_missing_or_of_the_wrong_type_names_the_trial_and_the_key(
    ray_session: Any,
    tmp_path: Path,
    capsys: Any,
    behaviour: str,
    spec_changes: dict[str, Any],
    says: list[str],
) -> None:
    err = run_breaking_the_contract(tmp_path, capsys, behaviour, spec_changes=spec_changes)
    assert all(words in err for words in says), err


def run_breaking_the_contract(
    tmp_path: Path, capsys: Any, behaviour: str, spec_changes: dict[str, Any] | None = None, **args: Any
) -> str:
    """`sweep run` of 2 trials that break the contract: exit 2, one paragraph naming one of
    the trials, no traceback and no Ray frames, the sweep aborted. Returns stderr."""
    spec = behaving_spec(
        tmp_path,
        behaviour.replace("_", "-"),
        behaviour,
        num_samples=2,
        failure={"max_retries": 0, "max_failed_fraction": 1.0},
        **(spec_changes or {}),
    )
    spec["trainable_args"].update(args)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["run", str(path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    trial_ids = {t.user_attrs["backend_trial_id"] for t in study_trials(tmp_path / "results", spec["name"])}
    assert any(f"trial {trial_id}" in err for trial_id in trial_ids), err
    assert "Traceback" not in err and "ray" not in err.lower().replace("array", ""), err
    assert read_state(sweep_paths(tmp_path / "results", spec["name"]))["state"] == "aborted"
    return err


@pytest.mark.slow
@pytest.mark.parametrize(
    "behaviour, says",
    [
        ("no_report", "the trainable returned without ever calling ctx.report"),
        ("return_value", "the trainable returned a value without ever calling ctx.report"),
        ("no_iteration", "without `iteration=`"),
        ("short_data", "returned after iteration 15 of the 20 its config implies"),
    ],
)
def test_a_trainable_that_breaks_the_contract_ends_the_sweep_with_exit_2_and_one_paragraph(
    ray_session: Any,
    tmp_path: Path,
    capsys: Any,
    behaviour: str,
    says: str,
) -> None:
    assert says in run_breaking_the_contract(tmp_path, capsys, behaviour, report_every=5)


@pytest.mark.slow
def test_metrics_reported_as_0d_tensors_are_accepted(ray_session: Any, tmp_path: Path) -> None:
    _, summary = run(tmp_path, behaving_spec(tmp_path, "tensors", "tensor_metric", num_samples=2))
    assert summary.trials["completed"] == 2 and isinstance(summary.best["value"], float), summary.trials


@pytest.mark.slow
def test_a_loop_that_skips_its_final_report_is_told_to_report_it(
    ray_session: Any, tmp_path: Path, capsys: Any
) -> None:
    # 20 iterations, reports every 6 (at 6, 12, 18) and never at 20.
    err = run_breaking_the_contract(tmp_path, capsys, "skip_final", report_every=6)
    assert "reported last at iteration 18 of its 20 (every 6 iterations)" in err, err
    assert "i == ctx.shape.total_iterations" in err
