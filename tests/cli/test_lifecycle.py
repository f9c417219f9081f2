"""`sweep list`, `status`, `best`, `stop`, a name used twice, hostile storage, Ctrl-C twice."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeps.cli import main
from sweeps.spec.loading import load_spec
from sweeps.store.state import read_state, sweep_paths, write_state
from tests.conftest import REPO, small_spec
from tests.runner.integrity import check_sweep_integrity, finished_trials, start_fake_driver


@pytest.fixture(scope="module")
def finished(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished 6-trial digits sweep, run with `--resume` (there was nothing to resume)."""
    folder = tmp_path_factory.mktemp("finished")
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(small_spec(storage=str(folder / "results")), sort_keys=False))
    assert main(["run", str(spec), "--resume", "--json"]) == 0
    storage = folder / "results"
    return {"spec": spec, "storage": storage, "state": read_state(sweep_paths(storage, "tiny"))}


def copy_sweep(finished: dict[str, Any], target: Path, name: str, **state_changes: Any) -> Path:
    shutil.copytree(finished["storage"] / "tiny", target / name)
    with sqlite3.connect(target / name / "optuna.db") as connection:  # study name = sweep name
        connection.execute("UPDATE studies SET study_name = ?", (name,))
    paths = sweep_paths(target, name)
    state = read_state(paths)
    state.update(name=name, spec={**state["spec"], "name": name}, **state_changes)
    write_state(paths, state)
    return target


@pytest.mark.slow
def test_list_shows_state_trials_done_best_and_start(
    finished: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    storage = copy_sweep(finished, tmp_path, "dead", state="running", driver_pid=2**22 + 7)
    shutil.copytree(finished["storage"] / "tiny", storage / "tiny")
    assert main(["list", "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    best = finished["state"]["summary"]["best"]["value"]
    for name, state in (("tiny", "finished"), ("dead", "crashed")):
        row = next(line for line in out.splitlines() if f" {name} " in line)
        assert (
            state in row
            and "6/6" in row
            and f"{best:.4f}" in row
            and finished["state"]["started_at"][:10] in row
        )


@pytest.mark.slow
def test_status_lists_every_trial_with_its_state(finished: dict[str, Any], capsys: Any) -> None:
    assert main(["status", "tiny", "--storage", str(finished["storage"])]) == 0
    out = capsys.readouterr().out
    trials = finished["state"]["summary"]["trials"]
    assert "finished, 6/6 trials done" in " ".join(out.split())
    assert out.count("completed") >= trials["completed"] and out.count("pruned") >= trials["pruned"]
    # Issue 24, 2: once every trial has ended, only the best trial's last checkpoint is left.
    assert "Checkpoints: 1 taking" in " ".join(out.split())
    best = finished["state"]["summary"]["best"]["trial_id"]
    left = list((finished["storage"] / "tiny" / "ray").glob("*/checkpoint_*"))
    assert len(left) == 1 and f"_{best}_" in left[0].parent.name, left
    # Each pruned trial says at which rung it stopped, its value there and the cut-off it missed.
    assert main(["status", "tiny", "--storage", str(finished["storage"]), "--wide"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if " pruned " in line]
    assert len(rows) == trials["pruned"] > 0
    for row in rows:
        value, cutoff = re.search(r"rung \d+ iterations: (\S+) < cut-off (\S+)", row).groups()  # type: ignore[union-attr]
        assert float(value) < float(cutoff)


@pytest.mark.slow
def test_status_at_80_columns_wraps_configs_without_cutting_them(
    finished: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    """It used to cut each config to "batch_size=6…"; --wide keeps each trial on one line."""
    from sweeps.ray_backend.formats import ray_trial_files
    from sweeps.store.catalog import describe_sweep

    trials = describe_sweep(finished["storage"], "tiny", ray_trial_files).trials
    items = {
        trial.trial_id: [
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.config.items()
        ]
        for trial in trials
    }
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["status", "tiny", "--storage", str(finished["storage"])]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    words = out.replace(",", " ").split()
    for trial_items in items.values():
        for item in trial_items:
            assert item in words, item  # whole, on one line

    assert main(["status", "tiny", "--storage", str(finished["storage"]), "--wide"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for trial_id, trial_items in items.items():
        row = next(line for line in lines if f" {trial_id} " in line)
        assert ", ".join(trial_items) in row


@pytest.mark.slow
def test_best_exports_fixed_values_a_spec_accepts_and_the_checkpoint(
    finished: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    assert main(["best", "tiny", "--storage", str(finished["storage"]), "--format", "json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["value"] == finished["state"]["summary"]["best"]["value"]
    assert set(exported["search_space"]) == {"batch_size", "epochs", "learning_rate"}
    assert Path(exported["checkpoint"], "state.pt").is_file()
    assert exported["model_uri"] == f"runs:/{exported['mlflow_run_id']}/model"

    output = tmp_path / "best.yaml"
    assert main(["best", "tiny", "--storage", str(finished["storage"]), "--output", str(output)]) == 0
    fixed = yaml.safe_load(output.read_text())["search_space"]
    assert fixed == exported["search_space"]
    again = tmp_path / "again.yaml"  # fed back as fixed values: a one-config sweep
    again.write_text(yaml.safe_dump({**yaml.safe_load(finished["spec"].read_text()), "search_space": fixed}))
    assert load_spec(again, []).spec.search_space == fixed


@pytest.mark.slow
def test_best_as_a_spec_runs_the_best_config_once(
    finished: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    """`--format yaml` put the checkpoint's path in `checkpoint:`, a spec field: 9 errors as a spec."""
    output = tmp_path / "elsewhere" / "best.yaml"
    output.parent.mkdir()
    assert (
        main(
            [
                "best",
                "tiny",
                "--storage",
                str(finished["storage"]),
                "--format",
                "spec",
                "--output",
                str(output),
            ]
        )
        == 0
    )
    assert f"sweep run {output}" in " ".join(capsys.readouterr().err.split())
    best = finished["state"]["summary"]["best"]
    text = output.read_text()
    assert "# Its model in MLflow: runs:/" in text and "/state.pt" in text  # as comments
    loaded = load_spec(output, [])
    assert (loaded.spec.name, loaded.spec.num_samples, loaded.spec.scheduler.type) == ("tiny-best", 1, "none")
    assert loaded.spec.search_space == best["config"] and loaded.spec.checkpoint.every_epochs == 1
    assert main(["run", str(output), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["trials"]["completed"] == 1 and summary["best"]["config"] == best["config"]
    # Beside the sweep, under its own name: the sweep itself is untouched.
    assert Path(summary["storage"]) == (finished["storage"] / "tiny-best").resolve()
    assert read_state(sweep_paths(finished["storage"], "tiny"))["summary"] == finished["state"]["summary"]


def test_best_with_an_unknown_format_is_exit_2_naming_the_formats(tmp_path: Path, capsys: Any) -> None:
    assert main(["best", "tiny", "--storage", str(tmp_path), "--format", "toml"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--format 'toml'" in err and "`spec`" in err


def test_best_of_a_sweep_without_a_finished_trial_is_exit_2(tmp_path: Path, capsys: Any) -> None:
    write_state(
        sweep_paths(tmp_path, "empty"),
        {"name": "empty", "spec": small_spec(name="empty"), "state": "running"},
    )
    assert main(["best", "empty", "--storage", str(tmp_path)]) == 2
    assert "no completed or pruned trial" in capsys.readouterr().err


def test_stop_asks_a_live_driver_and_refuses_a_dead_one(tmp_path: Path, capsys: Any) -> None:
    driver = start_fake_driver()
    try:
        paths = sweep_paths(tmp_path, "live")
        write_state(
            paths,
            {
                "name": "live",
                "spec": small_spec(name="live"),
                "state": "running",
                "driver_pid": driver.pid,
                "driver_host": os.uname().nodename,
            },
        )
        assert main(["stop", "live", "--storage", str(tmp_path)]) == 0
        assert json.loads((paths.directory / "stop-requested").read_text())["reason"] == "sweep stop"
    finally:
        driver.kill()
        driver.wait()
    assert main(["stop", "live", "--storage", str(tmp_path)]) == 2  # its driver is gone now
    assert "sweep resume live" in capsys.readouterr().err


@pytest.mark.slow
def test_a_name_used_twice_needs_resume_or_overwrite(finished: dict[str, Any], capsys: Any) -> None:
    spec = str(finished["spec"])
    assert main(["run", spec]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "already exists" in err and "--resume" in err and "--overwrite" in err
    assert main(["run", spec, "--resume", "--overwrite"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main(["run", spec, "--resume"]) == 2
    assert "already finished" in capsys.readouterr().err


# -- hostile storage: a real read-only or full filesystem, mounted in a private namespace -----


def _in_namespace(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``sh -c script`` as root of a user+mount namespace (no privileges needed)."""
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0"),
    )


READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
FULL = (
    'mount -t tmpfs -o size=2m tmpfs "$1" && cp -a "$2"/. "$1"/ ; '
    'dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null; d="$1"; shift 2; exec "$@"'
)


@pytest.mark.parametrize("kind", ["read-only", "full"])
def test_run_into_a_read_only_or_full_storage_is_exit_2(tmp_path: Path, kind: str) -> None:
    storage = tmp_path / "results"
    storage.mkdir()
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(small_spec(storage=str(storage)), sort_keys=False))
    command = [sys.executable, "-m", "sweeps", "run", str(spec)]
    done = (
        _in_namespace(READ_ONLY, str(storage), *command)
        if kind == "read-only"
        else _in_namespace(FULL, str(storage), str(tmp_path / "nothing"), *command)
    )
    assert done.returncode == 2, done.stderr[-2000:]
    err = " ".join(done.stderr.split())
    assert "field `storage`" in err and "cannot be written" in err and "Traceback" not in err, err


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["read-only", "full"])
def test_resume_on_a_read_only_or_full_storage_is_exit_2_and_changes_nothing(
    finished: dict[str, Any],
    tmp_path: Path,
    kind: str,
) -> None:
    source = copy_sweep(finished, tmp_path / "source", "halted", state="stopped")
    before = {p.name: p.read_bytes() for p in (source / "halted").iterdir() if p.is_file()}
    command = [sys.executable, "-m", "sweeps", "resume", "halted", "--storage"]
    if kind == "read-only":
        done = _in_namespace(READ_ONLY, str(source), *command, str(source))
    else:  # the tmpfs gets what resume reads before it writes, then fills up
        minimal = tmp_path / "minimal" / "halted"
        minimal.mkdir(parents=True)
        for name in ("sweep.json", "optuna.db", "optuna.db-wal", "optuna.db-shm"):
            if (source / "halted" / name).exists():
                shutil.copy2(source / "halted" / name, minimal / name)
        mount = tmp_path / "mount"
        mount.mkdir()
        done = _in_namespace(FULL, str(mount), str(minimal.parent), *command, str(mount))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "cannot be written" in done.stderr and "Traceback" not in done.stderr
    assert {p.name: p.read_bytes() for p in (source / "halted").iterdir() if p.is_file()} == before


def archived(finished: dict[str, Any], target: Path) -> Path:
    """A copy of the finished storage as an archive holds it: every database closed, no -wal, no -shm.

    (The finished sweep's own files may still be open in this process, its WAL index beside
    them, which lets even a read-write open read them on a read-only mount.)
    """
    shutil.copytree(finished["storage"], target)
    for database in target.rglob("*.db"):
        with sqlite3.connect(database) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()  # the last connection to close removes -wal and -shm
    assert not [p for p in target.rglob("*.db-*")], "an archive holds no -wal or -shm"
    # The analysis reads the MLflow store recorded in mlflow_runs.json, the original's: point
    # it at the copy, so that the report reads the store on the read-only mount.
    runs = target / "tiny" / "mlflow_runs.json"
    recorded = json.loads(runs.read_text())
    runs.write_text(json.dumps({**recorded, "tracking_uri": f"sqlite:///{target / 'mlflow.db'}"}))
    return target


@pytest.mark.slow
@pytest.mark.parametrize("command", ["list", "status", "best", "report"])
def test_a_finished_sweep_on_a_read_only_mount_is_read_without_writing(
    finished: dict[str, Any],
    tmp_path: Path,
    command: str,
) -> None:
    """Reading never needs write access (issue 12, 6): the study and the MLflow store open read-only.

    Before, on this mount `list` showed `unreadable`, `status` and `best` exited 2 with a
    misleading commit error, and `report -o` exited 1 with a SQLAlchemy traceback.
    """
    storage = archived(finished, tmp_path / "archive")
    before = {p: p.read_bytes() for p in storage.rglob("*.db*") if p.is_file()}
    argv = {
        "list": ["list"],
        "status": ["status", "tiny"],
        "best": ["best", "tiny", "--format", "json"],
        "report": ["report", "tiny", "-o", str(tmp_path / "report")],
    }[command]
    done = _in_namespace(
        READ_ONLY, str(storage), sys.executable, "-m", "sweeps", *argv, "--storage", str(storage)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    out = " ".join(done.stdout.split())
    if command == "list":
        assert "finished" in out and "6/6" in out and "unreadable" not in out
    elif command == "status":
        assert "finished, 6/6 trials done" in out
    elif command == "best":
        assert json.loads(done.stdout)["value"] == finished["state"]["summary"]["best"]["value"]
    else:
        assert (tmp_path / "report" / "index.html").is_file() and (
            tmp_path / "report" / "importance.png"
        ).is_file()
    assert {p: p.read_bytes() for p in storage.rglob("*.db*") if p.is_file()} == before


# -- Ctrl-C twice: stop at once; resume still works -------------------------------------------


@pytest.mark.slow
def test_ctrl_c_twice_stops_at_once_and_the_sweep_resumes(tmp_path: Path) -> None:
    storage = tmp_path / "results"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(small_spec(storage=str(storage), num_samples=10, seed=4), sort_keys=False))
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
    driver = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", str(spec), "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while finished_trials(storage / "tiny" / "optuna.db") < 3:
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        driver.send_signal(signal.SIGINT)
        time.sleep(0.05)
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=120)
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # what the driver's Ray left behind
        except ProcessLookupError:
            pass
    assert driver.returncode == 130, err[-2000:]
    assert f"sweep resume tiny --storage {storage}" in " ".join(err.split())
    # "interrupted" when the second Ctrl-C cut the graceful stop short; "stopped" when the
    # graceful stop (no trial left to checkpoint) had already ended Tune's loop. Both resume.
    assert read_state(sweep_paths(storage, "tiny"))["state"] in ("interrupted", "stopped")
    resumed = subprocess.run(
        [sys.executable, "-m", "sweeps", "resume", "tiny", "--storage", str(storage), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    check_sweep_integrity(storage, "tiny", 10, "val_accuracy")


@pytest.mark.parametrize("state", ["aborted", "stopped"])
def test_status_tells_how_to_go_on_and_never_to_resume_an_aborted_sweep(
    tmp_path: Path, capsys: Any, state: str
) -> None:
    """An aborted sweep (too many failed trials) would fail again: status says to fix it and run anew."""
    spec_path = str(tmp_path / "spec.yaml")
    write_state(
        sweep_paths(tmp_path, "gone"),
        {
            "name": "gone",
            "spec": small_spec(name="gone"),
            "state": state,
            "spec_path": spec_path,
            "overrides": ["num_samples=4"],
            "summary": {"aborted": "3 trials failed, more than failure.max_failed_fraction allows (2)"}
            if state == "aborted"
            else {},
        },
    )
    assert main(["status", "gone", "--storage", str(tmp_path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    if state == "aborted":
        assert "sweep resume" not in out
        assert "3 trials failed, more than failure.max_failed_fraction allows (2)" in out
        assert f"sweep run {spec_path} --set num_samples=4 --overwrite" in out
    else:
        assert f"sweep resume gone --storage {tmp_path}" in out


def test_best_as_a_table_needs_several_objectives(tmp_path: Path, capsys: Any) -> None:
    write_state(
        sweep_paths(tmp_path, "one"), {"name": "one", "spec": small_spec(name="one"), "state": "running"}
    )
    assert main(["best", "one", "--storage", str(tmp_path), "--format", "table"]) == 2
    assert "several objectives" in " ".join(capsys.readouterr().err.split())
