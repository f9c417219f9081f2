"""The read model of `sweep list`, `status` and `best` (sweeps/store/catalog.py) on hand-built sweep folders.

Each folder holds what a sweep leaves: ``sweep.json``, an Optuna study written by the real
searcher logic (:class:`~sweeps.search.truthful_study.TruthfulStudy`), Ray's trial folders
with checkpoints and an ``error.txt``, and ``mlflow_runs.json``. No Ray, no MLflow.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path
from typing import Any

import optuna
import pytest

from sweeps.errors import StateError
from sweeps.ray_backend.formats import ray_trial_files
from sweeps.search.truthful_study import open_truthful_study
from sweeps.spec.loading import validate_spec
from sweeps.store.catalog import RESUMABLE, aborted_advice, best_trial_export, describe_sweep, list_sweeps
from sweeps.store.state import SweepPaths, sweep_paths, write_state
from tests.conftest import small_spec
from tests.runner.integrity import start_fake_driver

DEAD_PID = 2**22 + 7
TOTAL = 30
#: trial id → (last iteration, value, error): two completed, a pruned one with the highest
#: value (measured at low fidelity: it must not win), a failed one, one still unfinished.
TRIALS: dict[str, tuple[int, float, bool] | None] = {
    "tgood": (TOTAL, 0.8, False),
    "tbest": (TOTAL, 0.9, False),
    "tcut": (10, 0.95, False),
    "tfail": (4, 0.1, True),
    "tlive": None,
}


def build_sweep(
    storage: Path,
    name: str = "tiny",
    state: str = "finished",
    trials: dict[str, Any] = TRIALS,
    mode: str = "max",
    **record: Any,
) -> SweepPaths:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    raw = small_spec(name=name, storage=str(storage), mode=mode, num_samples=max(1, len(trials)))
    raw["search_space"]["epochs"] = 2  # fixed: shown in each trial's config, not in the study
    paths = sweep_paths(storage, name)
    write_state(
        paths,
        {
            "name": name,
            "spec": raw,
            "state": state,
            "num_samples": len(trials),
            "started_at": "2026-12-01T10:00:00+00:00",
            "driver_pid": DEAD_PID,
            "driver_host": socket.gethostname(),
            **record,
        },
    )
    study = open_truthful_study(validate_spec(raw, paths.state_file).spec, paths)
    for trial_id, ending in trials.items():
        study.ask(trial_id)
        study.report(trial_id, [{"iteration": 2, "total_iterations": TOTAL, "val_accuracy": 0.05}])
        if ending is not None:
            iteration, value, error = ending
            study.finish(
                trial_id, [{"iteration": iteration, "total_iterations": TOTAL, "val_accuracy": value}], error
            )
    return paths


def trial_folder(paths: SweepPaths, trial_id: str, index: int = 0) -> Path:
    folder = (
        paths.ray_directory / f"run_trial_{trial_id}_{index:05d}_{index}_batch_size=64_2026-12-01_10-00-00"
    )
    folder.mkdir(parents=True)
    return folder


def test_status_shows_each_trial_with_its_outcome_value_iterations_and_config(tmp_path: Path) -> None:
    paths = build_sweep(tmp_path)
    (trial_folder(paths, "tfail") / "error.txt").write_text(
        "Traceback (most recent call last):\n  ...\nValueError: lr too high\n\n"
    )
    info = describe_sweep(tmp_path, "tiny", ray_trial_files)
    assert (info.name, info.state, info.num_samples, info.metric, info.mode) == (
        "tiny",
        "finished",
        5,
        "val_accuracy",
        "max",
    )
    assert info.started_at == "2026-12-01T10:00:00+00:00" and info.directory == paths.directory
    shown = {t.trial_id: (t.number, t.state, t.value, t.iteration, t.total_iterations) for t in info.trials}
    assert shown == {
        "tgood": (0, "completed", 0.8, TOTAL, TOTAL),
        "tbest": (1, "completed", 0.9, TOTAL, TOTAL),
        "tcut": (2, "pruned", 0.95, 10, TOTAL),
        "tfail": (3, "failed", 0.1, 4, TOTAL),
        # unfinished, and its driver is gone: the value and iteration of its last report
        "tlive": (4, "interrupted", 0.05, 2, None),
    }
    assert info.done == 4
    assert all(t.config["epochs"] == 2 and t.config["batch_size"] in (64, 128) for t in info.trials)
    assert [t.error for t in info.trials] == [None, None, None, "ValueError: lr too high", None]


def test_the_best_trial_is_the_best_completed_one_never_a_pruned_one(tmp_path: Path) -> None:
    info = describe_sweep(build_sweep(tmp_path).storage, "tiny", ray_trial_files)
    assert info.best() is not None and info.best().trial_id == "tbest"  # type: ignore[union-attr]
    assert dataclasses.replace(info, mode="min").best().trial_id == "tgood"  # type: ignore[union-attr]
    only_pruned = build_sweep(
        tmp_path / "p", trials={"ta": (10, 0.4, False), "tb": (12, 0.6, False), "tc": (3, 0.9, True)}
    )
    assert describe_sweep(only_pruned.storage, "tiny", ray_trial_files).best().trial_id == "tb"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("state", "alive", "reads", "unfinished"),
    [
        ("running", False, "crashed", "interrupted"),  # kill -9: the record still says running
        ("running", True, "running", "running"),
        ("stopped", False, "stopped", "interrupted"),
        ("interrupted", False, "interrupted", "interrupted"),
    ],
)
def test_a_sweep_reads_as_its_driver_stands(
    tmp_path: Path, state: str, alive: bool, reads: str, unfinished: str
) -> None:
    driver = start_fake_driver() if alive else None
    try:
        record: dict[str, Any] = {"driver_pid": driver.pid} if driver else {}
        build_sweep(tmp_path, state=state, **record)
        info = describe_sweep(tmp_path, "tiny", ray_trial_files)
        assert info.state == reads and info.trials[-1].state == unfinished
        assert (info.state in RESUMABLE) == (reads != "running")
    finally:
        if driver is not None:
            driver.kill()
            driver.wait()


def test_an_aborted_sweep_says_why_and_to_run_it_anew_not_to_resume(tmp_path: Path) -> None:
    build_sweep(
        tmp_path,
        state="aborted",
        spec_path="/specs/tiny.yaml",
        overrides=["num_samples=5"],
        summary={"aborted": "3 trials failed, more than failure.max_failed_fraction allows (2)"},
    )
    info = describe_sweep(tmp_path, "tiny", ray_trial_files)
    assert info.state == "aborted" and info.state not in RESUMABLE
    assert info.aborted_reason == "3 trials failed, more than failure.max_failed_fraction allows (2)"
    advice = aborted_advice(info)
    assert (
        info.aborted_reason in advice
        and "sweep run /specs/tiny.yaml --set num_samples=5 --overwrite" in advice
    )
    assert "sweep resume" not in advice


def test_list_shows_every_sweep_and_an_unreadable_one_as_such(tmp_path: Path) -> None:
    build_sweep(tmp_path, "alpha")
    build_sweep(tmp_path, "beta", state="stopped", trials={"t1": (TOTAL, 0.5, False)})
    broken = sweep_paths(tmp_path, "broken")
    broken.directory.mkdir()
    broken.state_file.write_text('{"name": "broken", "spe')  # a torn record
    fresh = sweep_paths(tmp_path, "fresh")  # claimed, no study yet
    write_state(
        fresh, {"name": "fresh", "spec": small_spec(name="fresh"), "state": "running", "num_samples": 6}
    )
    (tmp_path / "not-a-sweep").mkdir()
    listed = {i.name: (i.state, i.done, i.num_samples) for i in list_sweeps(tmp_path, ray_trial_files)}
    assert listed == {
        "alpha": ("finished", 4, 5),
        "beta": ("stopped", 1, 1),
        "broken": ("unreadable", 0, 0),
        "fresh": ("crashed", 0, 6),
    }


def test_list_of_a_missing_storage_folder_says_which_folder(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=rf"{tmp_path / 'nowhere'}: no such storage folder.*--storage PATH"):
        list_sweeps(tmp_path / "nowhere", ray_trial_files)


def test_a_corrupt_study_is_a_state_error_naming_it(tmp_path: Path) -> None:
    paths = build_sweep(tmp_path, trials={})
    paths.study_file.write_bytes(b"SQLite format 3\x00" + b"\xff" * 300)
    with pytest.raises(StateError, match=r"optuna\.db: the Optuna study cannot be read"):
        describe_sweep(tmp_path, "tiny", ray_trial_files)
    assert [i.state for i in list_sweeps(tmp_path, ray_trial_files)] == ["unreadable"]


def test_best_exports_the_config_as_fixed_values_with_its_checkpoint_and_run(tmp_path: Path) -> None:
    paths = build_sweep(tmp_path)
    older = trial_folder(paths, "tbest", 1)
    for name in ("checkpoint_000001", "checkpoint_000010", "checkpoint_000002"):
        (older / name).mkdir()
    (older / "checkpoint_000099").write_text("a file, not a checkpoint")
    (trial_folder(paths, "tgood") / "checkpoint_000050").mkdir()  # another trial's
    (paths.directory / "mlflow_runs.json").write_text(
        json.dumps({"parent": "p0", "trials": {"tbest": "run42"}})
    )
    export = best_trial_export(tmp_path, "tiny", ray_trial_files)
    best = next(t for t in describe_sweep(tmp_path, "tiny", ray_trial_files).trials if t.trial_id == "tbest")
    assert export == {
        "sweep": "tiny",
        "trial_id": "tbest",
        "state": "completed",
        "metric": "val_accuracy",
        "value": 0.9,
        "iterations": TOTAL,
        "search_space": best.config,
        "checkpoint": str(older / "checkpoint_000010"),
        "mlflow_run_id": "run42",
        "model_uri": "runs:/run42/model",
    }
    assert export["search_space"]["epochs"] == 2


def test_best_without_checkpoint_or_mlflow_run_says_so_with_none(tmp_path: Path) -> None:
    build_sweep(tmp_path)
    export = best_trial_export(tmp_path, "tiny", ray_trial_files)
    assert export["checkpoint"] is None and "mlflow_run_id" not in export


def test_best_of_a_sweep_with_no_value_yet_names_the_metric(tmp_path: Path) -> None:
    build_sweep(tmp_path, state="running", trials={"t1": None, "t2": (3, 0.2, True)})
    with pytest.raises(
        StateError,
        match=r"no completed or pruned trial with a value of `val_accuracy` yet.*sweep status tiny",
    ):
        best_trial_export(tmp_path, "tiny", ray_trial_files)


@pytest.mark.parametrize("mode, sign", [("max", "<"), ("min", ">")])
def test_status_says_at_which_rung_a_pruned_trial_stopped_its_value_there_and_the_cutoff(
    tmp_path: Path,
    mode: str,
    sign: str,
) -> None:
    from sweeps.cli.lifecycle import why_stopped

    raw = small_spec(name="cut", storage=str(tmp_path), mode=mode, num_samples=2)
    paths = sweep_paths(tmp_path, "cut")
    write_state(
        paths,
        {
            "name": "cut",
            "spec": raw,
            "state": "finished",
            "num_samples": 2,
            "driver_pid": DEAD_PID,
            "driver_host": socket.gethostname(),
        },
    )
    study = open_truthful_study(validate_spec(raw, paths.state_file).spec, paths)
    why = {"stopped_at_rung": 20.0, "rung_value": 0.25, "rung_cutoff": 0.5}
    for trial_id, last in (("tcut", 20), ("tdone", TOTAL)):
        study.ask(trial_id)
        study.bracket_assigned(trial_id, 1)
        # As the scheduler does for a trial that ran to its end on a rung below the cut-off.
        study.trial_stopped(trial_id, why)
        study.finish(trial_id, [{"iteration": last, "total_iterations": TOTAL, "val_accuracy": 0.25}], False)
    study.trial_stopped("tcut", {**why, "rung_value": 9.0})  # the study keeps what it had at the end
    trials = {t.trial_id: t for t in describe_sweep(tmp_path, "cut", ray_trial_files).trials}
    assert (trials["tcut"].state, trials["tcut"].stopped, trials["tcut"].bracket) == ("pruned", why, 1)
    assert (trials["tdone"].state, trials["tdone"].stopped) == (
        "completed",
        None,
    )  # not pruned: nothing to explain
    assert (
        why_stopped(trials["tcut"], mode, "iterations")
        == f"bracket 1, rung 20 iterations: 0.2500 {sign} cut-off 0.5000"
    )
    assert why_stopped(trials["tdone"], mode, "iterations") == "bracket 1"


def test_status_at_80_columns_shows_each_error_in_full_under_its_trial() -> None:
    from rich.console import Console

    from sweeps.cli.lifecycle import trials_table
    from sweeps.store.catalog import SweepInfo, TrialRow

    error = (
        "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.78 GiB total capacity; "
        "13.20 GiB already allocated)"
    )
    config = {"batch_size": 256, "learning_rate": 0.0123456, "epochs": 3, "weight_decay": 1e-5}
    info = SweepInfo(
        "oom",
        "aborted",
        3,
        "val_accuracy",
        "max",
        None,
        Path("."),
        trials=[
            TrialRow(0, "a1b2c_00000", "completed", config, 3.97e24, 30, 30),
            TrialRow(1, "a1b2c_00001", "failed", config, None, 1, 30, error=error),
        ],
    )
    console = Console(width=80, record=True)
    console.print(trials_table(info, wrap=True))
    out = console.export_text()
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "".join(error.split()) in "".join(out.split())  # in full, folded at 80 columns
    lines = out.splitlines()
    row = next(n for n, line in enumerate(lines) if "a1b2c_00001" in line)
    assert "RuntimeError" in " ".join(lines[row + 1 :])  # below its trial's row
    assert "batch_size=256" in out and "weight_decay=1e-05" in out  # whole items
    assert "3.97e24" in out and "3970000" not in out  # a compact value


def test_a_study_written_with_the_old_attribute_name_is_reported_the_same(tmp_path: Path) -> None:
    from tests.search.test_truthful_study import as_written_before_the_rename

    paths = build_sweep(tmp_path)
    before = describe_sweep(tmp_path, "tiny", ray_trial_files)
    as_written_before_the_rename(paths.study_file)
    after = describe_sweep(tmp_path, "tiny", ray_trial_files)
    assert [t.trial_id for t in after.trials] == list(TRIALS)
    assert after.trials == before.trials and after.best() == before.best()
