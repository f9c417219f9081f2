"""`sweep resume` in-process on the session's Ray: stopped sweeps, torn snapshots, bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.tune import Callback

from sweeps.cli import main
from sweeps.errors import SpecError
from sweeps.ray_backend import RayBackend
from sweeps.runner.resume import prepare_resume
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.spec.loading import load_spec
from sweeps.store.state import read_state, sweep_paths, write_state
from sweeps.store.stop_request import request_stop
from tests.conftest import small_spec
from tests.runner.integrity import check_sweep_integrity, start_fake_driver

TRAINABLE = f"{Path(__file__).with_name('behaving_trainable.py')}:train"


def slow_spec(folder: Path, name: str = "lifecycle", **changes: Any) -> dict[str, Any]:
    """8 trials of a few hundred ms each: slow enough to stop in the middle."""
    spec = small_spec(
        name=name,
        storage=str(folder / "results"),
        trainable=TRAINABLE,
        num_samples=8,
        trainable_args={"iteration_seconds": 0.03},
        seed=3,
        search_space={
            "batch_size": {"type": "categorical", "values": [50, 100]},
            "epochs": {"type": "int", "low": 1, "high": 3},
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        scheduler={"type": "asha", "grace_period": 10, "reduction_factor": 2},
    )
    spec.update(changes)
    return spec


def write(folder: Path, spec: dict[str, Any]) -> Path:
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


class StopAfter(Callback):
    """Writes the stop request `sweep stop` writes, after ``count`` results."""

    def __init__(self, count: int, paths: Any) -> None:
        self.count, self.paths = count, paths

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.count -= 1
        if self.count == 0:
            request_stop(self.paths, "sweep stop")


def run_until_stopped(folder: Path, spec: dict[str, Any], results: int = 6) -> Any:
    loaded = load_spec(write(folder, spec), [])
    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    summary = run_sweep(
        loaded, RunOptions(RayBackend(callbacks=[StopAfter(results, paths)]), live=False, overwrite=True)
    )
    return loaded, paths, summary


@pytest.fixture(scope="module")
def stopped_sweep(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A sweep stopped by `sweep stop`'s request in the middle; tests copy it before changing it."""
    folder = tmp_path_factory.mktemp("stopped")
    loaded, paths, summary = run_until_stopped(folder, slow_spec(folder))
    return {"folder": folder, "loaded": loaded, "paths": paths, "summary": summary}


def copy_of(stopped: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the stopped sweep's storage (its spec file stays where it was)."""
    target = tmp_path / "results"
    shutil.copytree(stopped["paths"].storage, target)
    return target


@pytest.mark.slow
def test_a_stopped_sweep_records_its_state_and_kills_its_runs(stopped_sweep: dict[str, Any]) -> None:
    from mlflow.tracking import MlflowClient

    summary, paths = stopped_sweep["summary"], stopped_sweep["paths"]
    assert summary.stopped == "sweep stop"
    assert read_state(paths)["state"] == "stopped"
    client = MlflowClient(paths.embedded_tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("lifecycle").experiment_id])
    assert "RUNNING" not in {r.info.status for r in runs}
    assert any(r.info.status == "KILLED" and r.data.tags.get("sweep.state") == "interrupted" for r in runs)


# A stopped sweep resumed to exactly num_samples, keeping its MLflow runs (the stop's KILLED
# runs reopened and FINISHED), with a best at least the stop's: the backend contract checks
# it on one stopped and resumed Ray sweep (tests/backend/test_ray_contract.py).


@pytest.mark.slow
def test_torn_ray_snapshot_is_set_aside_and_the_sweep_still_ends_with_num_samples(
    stopped_sweep: dict[str, Any],
    tmp_path: Path,
) -> None:
    storage = copy_of(stopped_sweep, tmp_path)
    for snapshot in (storage / "lifecycle" / "ray").glob("experiment_state-*.json"):
        snapshot.write_text(snapshot.read_text()[:200])  # a driver killed while Ray wrote it
    loaded, resumption = prepare_resume(storage, "lifecycle", backend=RayBackend())
    assert not resumption.state.restore and any("torn" in note for note in resumption.notes)
    run_sweep(loaded, RunOptions(RayBackend(), live=False, resume=resumption))
    check_sweep_integrity(storage, "lifecycle", 8, "val_accuracy")


# A trial the driver died sampling (some parameters, no trial id) gets its missing
# parameters and runs when the sweep resumes: the backend contract checks it on its Ray
# sweep and on the simulator (tests/backend/contract.py); reconcile's part of it is in
# tests/runner/test_reconcile.py.


@pytest.mark.slow
def test_raising_num_samples_continues_a_finished_sweep(
    stopped_sweep: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    storage = copy_of(stopped_sweep, tmp_path)
    assert main(["resume", "lifecycle", "--storage", str(storage), "--json"]) == 0
    assert main(["resume", "lifecycle", "--storage", str(storage)]) == 2
    assert "already finished" in capsys.readouterr().err
    assert main(["resume", "lifecycle", "--storage", str(storage), "--set", "num_samples=10", "--json"]) == 0
    check_sweep_integrity(storage, "lifecycle", 10, "val_accuracy")
    # The parent run tells the truth after two resumes (the stop, then two sessions): MLflow
    # refused the changed num_samples, and each session's counts restarted at step 1.
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{storage / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    parents = mlflow.search_runs(experiment_names=["lifecycle"], filter_string="tags.`sweep.role` = 'parent'")
    assert len(parents) == 1
    parent = parents.iloc[0]
    assert parent["params.num_samples"] == "8" and parent["params.session3.num_samples"] == "10"
    assert parent["tags.sweep.sessions"] == "3" and parent["tags.sweep.setting.num_samples"] == "10"
    summary = read_state(sweep_paths(storage, "lifecycle"))["summary"]
    for outcome, count in summary["trials"].items():
        assert parent[f"metrics.trials_{outcome}"] == count, (
            outcome,
            parent[f"metrics.trials_{outcome}"],
            count,
        )
    assert sum(summary["trials"].values()) == 10
    assert parent["metrics.best_val_accuracy"] == summary["best"]["value"]
    # Each session goes on from the last step: no step holds two counts (a restart at step 1
    # did), and the counts never go down from one step to the next.
    values: dict[int, set[float]] = {}
    for point in MlflowClient(uri).get_metric_history(parent["run_id"], "trials_completed"):
        values.setdefault(point.step, set()).add(point.value)
    assert all(len(counts) == 1 for counts in values.values()), values
    counts = [min(values[step]) for step in sorted(values)]
    assert counts == sorted(counts) and counts[-1] == summary["trials"]["completed"], values


# -- bad input: each ends in a clear error and changes nothing --------------------------------


def test_resuming_a_sweep_that_does_not_exist_is_exit_2(tmp_path: Path, capsys: Any) -> None:
    assert main(["resume", "nope", "--storage", str(tmp_path)]) == 2
    assert "no sweep named `nope`" in capsys.readouterr().err


@pytest.mark.slow
def test_a_changed_search_space_is_refused_naming_the_field(
    stopped_sweep: dict[str, Any], tmp_path: Path
) -> None:
    storage = copy_of(stopped_sweep, tmp_path)
    before = (storage / "lifecycle" / "sweep.json").read_text()
    with pytest.raises(
        SpecError, match=r"field `search_space\.learning_rate\.high` changed from 1\.0 to 0\.5"
    ):
        prepare_resume(storage, "lifecycle", ["search_space.learning_rate.high=0.5"], backend=RayBackend())
    with pytest.raises(SpecError, match=r"field `num_samples` is 2, but the sweep `lifecycle` already has"):
        prepare_resume(storage, "lifecycle", ["num_samples=2"], backend=RayBackend())
    assert (storage / "lifecycle" / "sweep.json").read_text() == before


@pytest.mark.slow
def test_an_edited_spec_file_is_checked_and_harmless_edits_are_taken(
    stopped_sweep: dict[str, Any], tmp_path: Path
) -> None:
    storage = copy_of(stopped_sweep, tmp_path)
    state = read_state(sweep_paths(storage, "lifecycle"))
    edited = dict(state["spec"], num_samples=9, max_concurrent=1)
    state["spec_path"] = str(write(tmp_path, edited))
    write_state(sweep_paths(storage, "lifecycle"), state)
    loaded, resumption = prepare_resume(storage, "lifecycle", backend=RayBackend())
    assert loaded.spec.num_samples == 9
    assert any("max_concurrent" in note for note in resumption.notes)
    write(tmp_path, dict(edited, metric="val_loss"))
    with pytest.raises(SpecError, match="field `metric` changed"):
        prepare_resume(storage, "lifecycle", backend=RayBackend())


@pytest.mark.parametrize("damage", ["truncated", "not json", "no spec"])
def test_a_corrupt_state_file_is_exit_2(tmp_path: Path, capsys: Any, damage: str) -> None:
    paths = sweep_paths(tmp_path, "broken")
    write_state(paths, {"name": "broken", "spec": small_spec(name="broken"), "state": "running"})
    text = paths.state_file.read_text()
    paths.state_file.write_text(
        {
            "truncated": text[: len(text) // 2],
            "not json": "\x00\x01garbage",
            "no spec": json.dumps({"name": "broken"}),
        }[damage]
    )
    assert main(["resume", "broken", "--storage", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "sweep.json" in err and "Traceback" not in err


def test_a_corrupt_optuna_study_is_exit_2(tmp_path: Path, capsys: Any) -> None:
    paths = sweep_paths(tmp_path, "broken")
    write_state(
        paths,
        {"name": "broken", "spec": small_spec(name="broken", storage=str(tmp_path)), "state": "stopped"},
    )
    (paths.directory / "optuna.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 300)
    assert main(["resume", "broken", "--storage", str(tmp_path)]) == 2
    assert "optuna.db" in capsys.readouterr().err


def test_a_sweep_whose_driver_still_runs_is_not_resumed(tmp_path: Path, capsys: Any) -> None:
    driver = start_fake_driver()
    try:
        paths = sweep_paths(tmp_path, "busy")
        write_state(
            paths,
            {
                "name": "busy",
                "spec": small_spec(name="busy"),
                "state": "running",
                "driver_pid": driver.pid,
                "driver_host": os.uname().nodename,
            },
        )
        assert main(["resume", "busy", "--storage", str(tmp_path)]) == 2
        assert "still running" in capsys.readouterr().err
    finally:
        driver.kill()
        driver.wait()


def test_a_sweep_running_on_another_host_needs_force(tmp_path: Path, capsys: Any) -> None:
    paths = sweep_paths(tmp_path, "remote")
    write_state(
        paths,
        {
            "name": "remote",
            "spec": small_spec(name="remote", storage=str(tmp_path)),
            "state": "running",
            "driver_pid": 4242,
            "driver_host": "elsewhere",
        },
    )
    assert main(["resume", "remote", "--storage", str(tmp_path)]) == 2
    assert "running on host elsewhere" in capsys.readouterr().err
    assert main(["resume", "remote", "--storage", str(tmp_path), "--force"]) == 2  # gets further:
    assert "Optuna study is missing" in capsys.readouterr().err  # this fake sweep never ran
