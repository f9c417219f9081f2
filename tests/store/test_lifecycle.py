"""``sweep.json``'s state machine (sweeps/store/lifecycle.py): every legal transition, illegal ones refused.

Fast: real files in tmp_path, a real Optuna study in SQLite where a transition counts trials.
"""

from __future__ import annotations

import ast
import json
import os
import socket
from pathlib import Path
from typing import Any

import optuna
import pytest

from sweeps.errors import StateError
from sweeps.store.lifecycle import (
    LEGAL_TRANSITIONS,
    SweepState,
    check_transition,
    observed_state,
    recorded_state,
    transition,
)
from sweeps.store.state import SweepPaths, read_state, sweep_paths, write_state
from tests.conftest import REPO, small_spec
from tests.runner.integrity import start_fake_driver

S = SweepState
#: A pid no process has (above Linux's pid_max of 2**22).
DEAD_PID = 2**22 + 7
#: Every transition the code makes, with who makes it.
LEGAL = [
    (None, S.RUNNING),  # sweep run (runner._claim_sweep_directory)
    (S.RUNNING, S.FINISHED),
    (S.RUNNING, S.ABORTED),
    (S.RUNNING, S.STOPPED),  # runner.recorders
    (S.RUNNING, S.INTERRUPTED),  # runner.stopping: Ctrl-C twice
    (S.RUNNING, S.RUNNING),
    (S.STOPPED, S.RUNNING),
    (S.INTERRUPTED, S.RUNNING),  # sweep resume
    (S.FINISHED, S.RUNNING),  # sweep resume --set num_samples=N, N above the trials so far
]
WRITTEN = [s for s in SweepState if s is not S.CRASHED]
ILLEGAL = [(a, b) for a in [None, *WRITTEN] for b in SweepState if (a, b) not in LEGAL]


def sweep_in(tmp_path: Path, state: SweepState | None, **fields: Any) -> SweepPaths:
    """A sweep folder whose record is ``state`` (None: no record), with a dead driver."""
    paths = sweep_paths(tmp_path, "tiny")
    if state is not None:
        write_state(
            paths,
            {
                "name": "tiny",
                "spec": small_spec(),
                "state": state.value,
                "num_samples": 3,
                "driver_pid": DEAD_PID,
                "driver_host": socket.gethostname(),
                **fields,
            },
        )
    return paths


def study_with_trials(paths: SweepPaths, count: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    paths.directory.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=paths.optuna_url, study_name=paths.name)
    for _ in range(count):
        study.tell(study.ask(), 0.5)


def test_the_table_is_the_transitions_the_code_makes() -> None:
    assert {(a, b) for a, targets in LEGAL_TRANSITIONS.items() for b in targets} == set(LEGAL)


@pytest.mark.parametrize(("source", "to"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_every_legal_transition_is_written_with_its_fields(
    tmp_path: Path, source: SweepState | None, to: SweepState
) -> None:
    paths = sweep_in(tmp_path, source, summary={"kept": True})
    if source is S.FINISHED:  # it goes on with num_samples above its trials
        study_with_trials(paths, 3)
    written = transition(paths, to, spec=small_spec(), num_samples=5, stopped_at="now")
    record = read_state(paths)
    assert record == written and record["state"] == to.value and record["stopped_at"] == "now"
    if source is not None:  # the rest of the record stays
        assert record["summary"] == {"kept": True} and record["spec"] == small_spec()
    assert [p.name for p in paths.directory.iterdir() if p.name != "optuna.db"] == [
        "sweep.json"
    ]  # no temp file left


@pytest.mark.parametrize(("source", "to"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_an_illegal_transition_is_refused_naming_the_file_the_states_and_the_fix(
    tmp_path: Path, source: SweepState | None, to: SweepState
) -> None:
    paths = sweep_in(tmp_path, source, summary={"aborted": "3 trials failed"})
    before = paths.state_file.read_bytes() if source is not None else None
    with pytest.raises(StateError) as refused:
        transition(paths, to, num_samples=5)
    message = str(refused.value)
    assert str(paths.directory) in message
    if source is S.ABORTED:  # final: the fix is a new run
        assert "3 trials failed" in message and "--overwrite" in message
    else:
        assert f"`{source or 'not recorded'}`" in message and f"`{to}`" in message
        assert (
            "never written" if to is S.CRASHED else "sweep run" if source is None else "sweep resume tiny"
        ) in message
    assert (paths.state_file.read_bytes() if source is not None else None) == before
    if source is None:
        assert not paths.exists()


def test_a_new_sweep_record_is_the_fields_given(tmp_path: Path) -> None:
    paths = sweep_paths(tmp_path, "tiny")
    transition(paths, S.RUNNING, name="tiny", spec=small_spec(), num_samples=6)
    assert read_state(paths) == {"name": "tiny", "spec": small_spec(), "num_samples": 6, "state": "running"}


def test_a_finished_sweep_runs_again_only_with_num_samples_above_its_trials(tmp_path: Path) -> None:
    paths = sweep_in(tmp_path, S.FINISHED)
    study_with_trials(paths, 3)
    for refused in (None, 2, 3):
        with pytest.raises(StateError, match=r"already finished its 3 trials.*--set num_samples=N"):
            transition(paths, S.RUNNING, **({} if refused is None else {"num_samples": refused}))
    assert read_state(paths)["state"] == "finished"
    assert transition(paths, S.RUNNING, num_samples=4)["num_samples"] == 4


def test_a_sweep_a_limit_finished_early_goes_on_with_the_same_num_samples(tmp_path: Path) -> None:
    """`limits.on_exhausted: drain` finishes a sweep with fewer trials than num_samples."""
    paths = sweep_in(tmp_path, S.FINISHED, num_samples=5)
    study_with_trials(paths, 3)
    assert transition(paths, S.RUNNING, num_samples=5)["state"] == "running"


def test_a_sweep_whose_driver_still_runs_is_not_taken_over(tmp_path: Path) -> None:
    driver = start_fake_driver()
    try:
        paths = sweep_in(tmp_path, S.RUNNING, driver_pid=driver.pid)
        assert observed_state(paths, read_state(paths)) is S.RUNNING
        with pytest.raises(StateError, match=rf"still running \(driver pid {driver.pid}\).*sweep stop tiny"):
            transition(paths, S.RUNNING, num_samples=3)
        # Its own driver ends it, though.
        transition(paths, S.FINISHED)
    finally:
        driver.kill()
        driver.wait()


@pytest.mark.parametrize(
    ("pid", "host", "reads"),
    [
        (DEAD_PID, None, S.CRASHED),  # the driver died (kill -9 writes nothing)
        (os.getpid(), None, S.CRASHED),  # this process, which is not running that sweep any more
        ("not a pid", None, S.CRASHED),
        (DEAD_PID, "another-host", S.CRASHED),  # cannot be checked from here: not alive here
    ],
    ids=["dead-pid", "this-process", "not-a-pid", "another-host"],
)  # no pid in an id: xdist's workers must agree
def test_running_with_no_live_driver_reads_crashed(
    tmp_path: Path, pid: Any, host: str | None, reads: SweepState
) -> None:
    paths = sweep_in(tmp_path, S.RUNNING, driver_pid=pid, driver_host=host or socket.gethostname())
    record = read_state(paths)
    assert recorded_state(paths, record) is S.RUNNING
    assert observed_state(paths, record) is reads


@pytest.mark.parametrize("state", [S.FINISHED, S.ABORTED, S.STOPPED, S.INTERRUPTED])
def test_an_ended_sweep_reads_as_recorded(tmp_path: Path, state: SweepState) -> None:
    paths = sweep_in(tmp_path, state)
    assert observed_state(paths, read_state(paths)) is state


@pytest.mark.parametrize("value", ["crashed", "done", None, 3])
def test_a_record_with_an_unknown_state_names_the_file_the_field_and_the_fix(
    tmp_path: Path, value: Any
) -> None:
    paths = sweep_in(tmp_path, S.RUNNING)
    record = {**read_state(paths), "state": value}
    if value is None:
        del record["state"]
    paths.state_file.write_text(json.dumps(record))
    with pytest.raises(
        StateError, match=rf"sweep\.json: field `state` is {value!r}, .*`running`.*--overwrite"
    ):
        observed_state(paths, read_state(paths))
    with pytest.raises(StateError, match="field `state`"):
        check_transition(paths, read_state(paths), S.RUNNING, num_samples=9)


def test_the_state_reads_and_writes_as_its_plain_name() -> None:
    assert json.dumps({"state": S.STOPPED}) == '{"state": "stopped"}'
    assert f"{S.INTERRUPTED}" == "interrupted" and S("finished") is S.FINISHED and isinstance(S.RUNNING, str)


def test_only_the_state_machine_writes_the_record() -> None:
    """No module of the package but sweeps/store/lifecycle.py calls `write_state` (or writes
    sweep.json itself), so every change of state goes through `transition`."""
    writers = []
    for path in sorted((REPO / "sweeps").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        if relative in ("sweeps/store/lifecycle.py", "sweeps/store/state.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            on_state_file = any(
                isinstance(n, ast.Attribute) and n.attr == "state_file" for n in ast.walk(node)
            )
            if name in ("write_state", "update_state") or (name == "write_atomically" and on_state_file):
                writers.append(f"{relative}:{node.lineno}")
    assert writers == [], f"these write sweep.json without sweeps.store.lifecycle.transition: {writers}"


@pytest.mark.parametrize("command", ["status", "resume", "stop"])
def test_an_unknown_state_through_the_cli_is_exit_2_naming_the_field(
    tmp_path: Path, capsys: Any, command: str
) -> None:
    from sweeps.cli import main

    paths = sweep_in(tmp_path, S.RUNNING)
    paths.state_file.write_text(json.dumps({**read_state(paths), "state": "paused"}))
    assert main([command, "tiny", "--storage", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "sweep.json: field `state` is 'paused'" in err and "--overwrite" in err and "Traceback" not in err
