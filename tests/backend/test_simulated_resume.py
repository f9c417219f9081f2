"""Resume's intricate cases on the simulator, in milliseconds: a driver killed at chosen points.

Each case kills the simulated driver (``crash_after``) where a real one can die, resumes
on a fresh simulator, and checks what every resume must leave: exactly ``num_samples``
finished trials, no config twice, no iteration delivered twice, the trials that had
finished untouched, and the case's own outcome (lost, told late, added back, continued).
The reconcile logic they go through (sweeps/runner/reconcile.py) is the Ray backend's
too; tests/runner/test_reconcile.py checks Ray's snapshot correction on hand-made files.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from sweeps.backend.simulated import RECORD_FILE, SimulatedBackend, SimulatedCrash
from sweeps.runner.reconcile import LOST_WITH_DRIVER
from sweeps.runner.resume import prepare_resume
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.spec.loading import LoadedSpec, load_spec
from sweeps.store.journal import JOURNAL_FILE, read_journal
from sweeps.store.state import SweepPaths, read_state, sweep_paths
from sweeps.store.study_records import RECORD_ATTR, backend_trial_id
from tests.conftest import small_spec

NUM_SAMPLES = 6


def spec_file(folder: Path) -> Path:
    spec = small_spec(
        num_samples=NUM_SAMPLES, seed=5, storage=str(folder / "results"), tracking={"enabled": False}
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def reports_of_a_whole_run(tmp_path: Path) -> list[tuple[str, int, bool]]:
    """(trial id, iteration, done) of every report of the same sweep run without a crash."""
    backend = SimulatedBackend()
    run_sweep(load_spec(spec_file(tmp_path / "dry"), []), RunOptions(backend, live=False))
    journal = read_journal(sweep_paths(tmp_path / "dry" / "results", "tiny").directory / JOURNAL_FILE)
    return [
        (t, i, bool(next(r for r in journal[t] if r["iteration"] == i).get("done")))
        for t, i in backend.delivered
    ]


class Crashed:
    """A sweep whose simulated driver died at report ``crash_after``, then resumed."""

    def __init__(self, folder: Path, crash_after: int, save_every: int) -> None:
        self.loaded: LoadedSpec = load_spec(spec_file(folder), [])
        self.paths: SweepPaths = sweep_paths(self.loaded.spec.storage, self.loaded.spec.name)
        with pytest.raises(SimulatedCrash):
            run_sweep(
                self.loaded,
                RunOptions(SimulatedBackend(save_every=save_every, crash_after=crash_after), live=False),
            )
        assert read_state(self.paths)["state"] == "running"  # as a killed driver leaves it
        self.journal_at_crash = copy.deepcopy(read_journal(self.paths.directory / JOURNAL_FILE))
        self.study_at_crash = self.study()
        record = self.paths.directory / RECORD_FILE
        #: The simulator's own record as the crash left it (None: never saved).
        self.record_at_crash: dict[str, Any] | None = (
            json.loads(record.read_text())["trials"] if record.exists() else None
        )
        self.backend = SimulatedBackend()
        loaded, self.resumption = prepare_resume(self.paths.storage, self.paths.name, backend=self.backend)
        self.summary = run_sweep(loaded, RunOptions(self.backend, live=False, resume=self.resumption))
        self.journal = read_journal(self.paths.directory / JOURNAL_FILE)

    def study(self) -> dict[str, optuna.trial.FrozenTrial]:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name="tiny", storage=self.paths.optuna_url)
        return {str(backend_trial_id(t)): t for t in study.trials}

    def check_every_resume_promise(self) -> None:
        study = self.study()
        assert len(study) == NUM_SAMPLES and all(t.state.is_finished() for t in study.values())
        assert (
            sum(self.summary.trials.values()) == NUM_SAMPLES and read_state(self.paths)["state"] == "finished"
        )
        configs = [tuple(sorted(t.params.items())) for t in study.values()]
        assert len(set(configs)) == NUM_SAMPLES
        for trial_id, results in self.journal.items():
            iterations = [int(r["iteration"]) for r in results]
            assert iterations == sorted(set(iterations)), (trial_id, iterations)  # none delivered twice
        for trial_id, frozen in self.study_at_crash.items():
            assert study[trial_id].params == frozen.params
            if frozen.state.is_finished():  # never run again
                assert self.journal[trial_id] == self.journal_at_crash[trial_id]
                assert study[trial_id].state == frozen.state
        rerun = {t for t, _, _ in self.backend.decisions} & {
            t for t, f in self.study_at_crash.items() if f.state.is_finished()
        }
        assert rerun == set(), rerun


def crashed_trial(reports: list[tuple[str, int, bool]], crash_after: int) -> str:
    return reports[crash_after - 1][0]


def test_a_driver_killed_before_the_simulators_first_save_loses_its_running_trial(tmp_path: Path) -> None:
    reports = reports_of_a_whole_run(tmp_path)
    crash_after = next(n for n, (_, _, done) in enumerate(reports, 1) if n > 3 and not done)
    sweep = Crashed(tmp_path, crash_after, save_every=10**6)
    assert sweep.record_at_crash is None  # never saved before the crash
    trial_id = crashed_trial(reports, crash_after)
    lost = sweep.study()[trial_id]
    assert (
        lost.state == optuna.trial.TrialState.FAIL
        and lost.user_attrs[RECORD_ATTR]["error"] == LOST_WITH_DRIVER
    )
    assert sweep.journal[trial_id] == sweep.journal_at_crash[trial_id]  # not run again
    assert (
        not sweep.resumption.state.restore
        and f"1 trial(s) {LOST_WITH_DRIVER}; recorded as failed" in sweep.resumption.notes
    )
    sweep.check_every_resume_promise()


def test_a_trial_the_journal_saw_end_is_told_to_the_study_and_not_run_again(tmp_path: Path) -> None:
    reports = reports_of_a_whole_run(tmp_path)
    crash_after = next(n for n, (_, _, done) in enumerate(reports, 1) if n > 3 and done)
    sweep = Crashed(tmp_path, crash_after, save_every=2)
    trial_id = crashed_trial(reports, crash_after)
    assert not sweep.study_at_crash[trial_id].state.is_finished()  # the driver died before telling the study
    told = sweep.study()[trial_id]
    assert told.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert told.user_attrs[RECORD_ATTR]["iteration"] == sweep.journal_at_crash[trial_id][-1]["iteration"]
    assert sweep.journal[trial_id] == sweep.journal_at_crash[trial_id]
    assert trial_id not in {t for t, _ in sweep.backend.delivered}
    sweep.check_every_resume_promise()


def test_a_trial_the_simulators_record_never_saw_is_added_back_and_continues(tmp_path: Path) -> None:
    reports = reports_of_a_whole_run(tmp_path)
    # A later trial's second report, not its last: the last save was the report before its first.
    first, third = next(
        (n, t)
        for n, (t, _, _) in enumerate(reports, 1)
        if n > 3 and reports[n - 2][0] != t and reports[n][0] == t and not reports[n][2]
    )
    sweep = Crashed(tmp_path, first + 1, save_every=first - 1)
    assert sweep.record_at_crash is not None and third not in sweep.record_at_crash
    assert sweep.resumption.state.restore and sweep.resumption.state.continued == [third]
    assert "(1 of them restored from the study and the journal)" in sweep.resumption.notes[-1]
    before = sweep.journal_at_crash[third]
    assert sweep.journal[third][: len(before)] == before and len(sweep.journal[third]) > len(before)
    # It went on after the last iteration the journal held: none delivered twice.
    assert min(i for t, i in sweep.backend.delivered if t == third) > before[-1]["iteration"]
    sweep.check_every_resume_promise()


def test_a_trial_the_record_holds_behind_the_journal_continues_from_its_checkpoint_without_repeats(
    tmp_path: Path,
) -> None:
    reports = reports_of_a_whole_run(tmp_path)
    # A trial's report after its first, with a save every second report: the record holds the one before.
    crash_after = next(
        n
        for n, (t, _, done) in enumerate(reports, 1)
        if n > 3 and n % 2 == 1 and not done and reports[n - 2][0] == t
    )
    sweep = Crashed(tmp_path, crash_after, save_every=2)
    trial_id = crashed_trial(reports, crash_after)
    saved = sweep.record_at_crash
    assert sweep.resumption.state.restore and sweep.resumption.state.continued == [trial_id]
    assert sweep.resumption.state.delivered == {trial_id: sweep.journal_at_crash[trial_id][-1]["iteration"]}
    assert saved is not None and saved[trial_id]["status"] == "unfinished"
    # The record is a save behind the journal: the trial restarts from that checkpoint.
    assert saved[trial_id]["last_result"]["iteration"] < sweep.journal_at_crash[trial_id][-1]["iteration"]
    before = sweep.journal_at_crash[trial_id]
    assert sweep.journal[trial_id][: len(before)] == before
    assert min(i for t, i in sweep.backend.delivered if t == trial_id) > before[-1]["iteration"]
    sweep.check_every_resume_promise()


def test_a_killed_two_objective_sweep_resumes_with_its_rungs_and_front(tmp_path: Path) -> None:
    """A killed 2-objective sweep resumes to its end, and the resumed summary's front is the
    study's (feasible, non-dominated, best first by the first objective). The replay of MOASHA's
    rungs itself is checked decision by decision in tests/search/test_pareto.py."""
    from sweeps.search.front import front_trials

    spec = small_spec(
        num_samples=NUM_SAMPLES,
        seed=5,
        storage=str(tmp_path / "results"),
        tracking={"enabled": False},
        metric=["val_accuracy", "cost"],
        mode=["max", "min"],
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    paths = sweep_paths(tmp_path / "results", "tiny")
    with pytest.raises(SimulatedCrash):
        run_sweep(load_spec(path, []), RunOptions(SimulatedBackend(crash_after=12), live=False))
    journal_at_crash = read_journal(paths.directory / JOURNAL_FILE)
    backend = SimulatedBackend()
    loaded, resumption = prepare_resume(paths.storage, paths.name, backend=backend)
    summary = run_sweep(loaded, RunOptions(backend, live=False, resume=resumption))
    study = optuna.load_study(study_name="tiny", storage=paths.optuna_url)
    assert len(study.directions) == 2 and all(t.state.is_finished() for t in study.trials)
    assert len(study.trials) == NUM_SAMPLES
    front = summary.to_json()["pareto_front"]
    assert [m["trial_id"] for m in front] == [
        backend_trial_id(t) for t in front_trials(study.trials, ["max", "min"])
    ]
    assert journal_at_crash  # the crash came after trials reported: there were rungs to replay
