"""The promises every :class:`sweeps.backend.Backend` keeps, as a reusable test case.

In the style of Optuna's ``optuna/testing/pytest_samplers.py``: a backend's tests subclass
:class:`BackendContract` and give the ``contract_run`` fixture, one :class:`ContractRun`
made by :func:`run_contract_sweep` with that backend; every test of the class then checks
one promise on that same run. A run is one sweep stopped by a limit
(``limits.on_exhausted: stop``, which goes through the graceful stop) and resumed to its
end, so the fixture is class-scoped: a slow backend (Ray) pays for one sweep and one
resume, and the simulator for a few milliseconds of each.

The promises:

- the sweep ends with exactly ``num_samples`` trials, and no config runs twice;
- ASHA's decisions hold: a pruned trial was stopped at a rung below its cut-off and
  before its last iteration, a completed one ran to its last;
- the limit stopped the first run once it was spent, within a trial's length per
  running trial, and the resume counted what was spent before;
- the resume went on where the stop left off: no finished trial ran again, each
  unfinished one continued after its last delivered iteration (none delivered twice),
  and only the missing trials were created; a trial the driver died sampling (some
  parameters, no trial id) gets the rest of its parameters and runs;
- the journal, the study and the ledger (the summary) tell the same story, and so does
  MLflow (:func:`tests.runner.integrity.check_sweep_integrity`): the stop marked the
  running trials' runs KILLED, and the resume reopened and finished those same runs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from sweeps.backend import Backend
from sweeps.plan.planner import plan_spec
from sweeps.runner.resume import prepare_resume
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.runner.summary import SweepSummary
from sweeps.spec.loading import LoadedSpec, load_spec
from sweeps.store.journal import JOURNAL_FILE, read_journal
from sweeps.store.state import SweepPaths, read_state, sweep_paths
from sweeps.store.study_records import backend_trial_id, recorded_stops
from tests.conftest import small_spec
from tests.runner.integrity import check_sweep_integrity

TRAINABLE = f"{Path(__file__).resolve().parents[1] / 'runner' / 'behaving_trainable.py'}:train"
NUM_SAMPLES = 8
#: Spent early in the first trials (the 8 trials run 20 to 80 iterations each, reporting
#: every 5): the stop leaves the first trial (and on Ray, the one beside it) unfinished,
#: for the resume to continue.
MAX_ITERATIONS = 8


def contract_spec(storage: Path) -> dict[str, Any]:
    """8 torch-free trials of 20-80 iterations, ASHA at 10, 20, 40, stopped once 8 iterations are spent."""
    return small_spec(
        name="contract",
        storage=str(storage),
        trainable=TRAINABLE,
        num_samples=NUM_SAMPLES,
        seed=3,
        # Reports every 5 iterations (as the simulator does): the limit is crossed between
        # rungs, while trials run, so the stop leaves them unfinished for the resume.
        trainable_args={"iteration_seconds": 0.02, "report_every": 5},
        search_space={
            "batch_size": {"type": "categorical", "values": [50, 100]},
            "epochs": {"type": "int", "low": 2, "high": 4},
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        scheduler={"type": "asha", "grace_period": 10, "reduction_factor": 2},
        limits={"max_iterations": MAX_ITERATIONS, "on_exhausted": "stop"},
    )


@dataclass
class TrialView:
    """One trial of the study, as a fresh reader sees it."""

    state: optuna.trial.TrialState
    params: dict[str, Any]


@dataclass
class ContractRun:
    """A sweep stopped by its limit and resumed to its end, with what each step left."""

    loaded: LoadedSpec
    paths: SweepPaths
    stopped: SweepSummary
    #: The state sweep.json recorded at the stop.
    state_at_stop: str
    journal_at_stop: dict[str, list[dict[str, Any]]]
    study_at_stop: dict[str, TrialView]
    resumed: SweepSummary
    journal: dict[str, list[dict[str, Any]]]
    study: dict[str, TrialView]
    #: MLflow's and the study's figures (tests.runner.integrity), None without tracking.
    integrity: dict[str, Any] | None
    #: MLflow trial run id → its status, at the stop and after the resume (empty without tracking).
    runs_at_stop: dict[str, str]
    runs: dict[str, str]
    #: The study number of the trial added half-sampled at the stop (add_a_half_sampled_trial).
    partial_number: int


def trial_runs(paths: SweepPaths, name: str) -> dict[str, str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(paths.embedded_tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id], max_results=1000)
    return {r.info.run_id: r.info.status for r in runs if r.data.tags.get("sweep.role") == "trial"}


def study_view(loaded: LoadedSpec, paths: SweepPaths) -> dict[str, TrialView]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=loaded.spec.name, storage=paths.optuna_url)
    return {str(backend_trial_id(t)): TrialView(t.state, dict(t.params)) for t in study.trials}


def run_contract_sweep(
    folder: Path, make_backend: Callable[[], Backend], tracking: bool = True
) -> ContractRun:
    """Run the contract's sweep on ``make_backend()`` until its limit stops it, then resume it to the end."""
    path = folder / "spec.yaml"
    spec = contract_spec(folder / "results")
    if not tracking:
        spec["tracking"] = {"enabled": False}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    loaded = load_spec(path, [])
    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    stopped = run_sweep(loaded, RunOptions(make_backend(), live=False))
    state_at_stop = str(read_state(paths)["state"])
    journal_at_stop = copy.deepcopy(read_journal(paths.directory / JOURNAL_FILE))
    study_at_stop = study_view(loaded, paths)
    runs_at_stop = trial_runs(paths, loaded.spec.name) if tracking else {}
    partial_number = add_a_half_sampled_trial(loaded, paths)
    backend = make_backend()
    loaded, resumption = prepare_resume(
        paths.storage, paths.name, ["limits.max_iterations=100000"], backend=backend
    )
    resumed = run_sweep(loaded, RunOptions(backend, live=False, resume=resumption))
    integrity = (
        check_sweep_integrity(paths.storage, paths.name, NUM_SAMPLES, loaded.spec.metric)
        if tracking
        else None
    )
    return ContractRun(
        loaded,
        paths,
        stopped,
        state_at_stop,
        journal_at_stop,
        study_at_stop,
        resumed,
        read_journal(paths.directory / JOURNAL_FILE),
        study_view(loaded, paths),
        integrity,
        runs_at_stop,
        trial_runs(paths, loaded.spec.name) if tracking else {},
        partial_number,
    )


def add_a_half_sampled_trial(loaded: LoadedSpec, paths: SweepPaths) -> int:
    """A trial as a driver killed inside Optuna's ``ask`` leaves it: some parameters, no trial
    id (the backend never saw it). The resume must complete its config and run it; returns its number."""
    study = optuna.load_study(study_name=loaded.spec.name, storage=paths.optuna_url)
    partial = study.ask()
    partial.suggest_categorical("batch_size", [50, 100])  # killed before epochs and learning_rate
    return int(partial.number)


FINISHED = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL}


class BackendContract:
    """Subclass with a class-scoped ``contract_run`` fixture: ``run_contract_sweep(folder, YourBackend)``."""

    @pytest.fixture(scope="class")
    @classmethod
    def contract_run(cls) -> ContractRun:
        raise NotImplementedError

    def test_exactly_num_samples_trials_each_finished_once(self, contract_run: ContractRun) -> None:
        run = contract_run
        assert len(run.study) == NUM_SAMPLES and {t.state for t in run.study.values()} <= FINISHED
        assert sum(run.resumed.trials.values()) == NUM_SAMPLES, run.resumed.trials
        assert len(run.resumed.trial_records) == NUM_SAMPLES
        assert read_state(run.paths)["state"] == "finished" and run.resumed.stopped is None

    def test_no_config_runs_twice(self, contract_run: ContractRun) -> None:
        configs = [tuple(sorted(t.params.items())) for t in contract_run.study.values()]
        assert len(set(configs)) == len(configs)
        # Each trial's iterations reached the journal once each, in order.
        for trial_id, results in contract_run.journal.items():
            iterations = [int(r["iteration"]) for r in results]
            assert iterations == sorted(set(iterations)), (trial_id, iterations)

    def test_asha_stops_only_below_a_rungs_cutoff_and_completed_trials_run_to_their_end(
        self, contract_run: ContractRun
    ) -> None:
        run = contract_run
        study = optuna.load_study(study_name=run.loaded.spec.name, storage=run.paths.optuna_url)
        stops = recorded_stops(study.trials)
        milestones = set(plan_spec(run.loaded)[1].milestones())
        states = {t: v.state for t, v in run.study.items()}
        assert (
            optuna.trial.TrialState.PRUNED in states.values()
            and optuna.trial.TrialState.COMPLETE in states.values()
        )
        for trial_id, state in states.items():
            last = run.journal[trial_id][-1]
            if state == optuna.trial.TrialState.PRUNED:
                why = stops[trial_id]
                assert why["stopped_at_rung"] in milestones and why["rung_value"] < why["rung_cutoff"], why
                assert why["stopped_at_rung"] <= last["iteration"] < last["total_iterations"], (why, last)
            elif state == optuna.trial.TrialState.COMPLETE:
                assert trial_id not in stops and last["iteration"] == last["total_iterations"], last

    def test_the_limit_stopped_the_first_run_once_spent_and_the_resume_counted_it(
        self, contract_run: ContractRun
    ) -> None:
        run = contract_run
        first = run.stopped
        assert first.limit is not None and first.limit.startswith("limits.max_iterations"), first.limit
        assert first.stopped == first.limit and run.state_at_stop == "stopped"
        assert sum(first.trials.values()) < NUM_SAMPLES
        longest = max(int(r[-1]["total_iterations"]) for r in run.journal.values())
        delivered = sum(int(r[-1]["iteration"]) for r in run.journal_at_stop.values())
        # Spent: no trial starts once the limit is reached; the running ones end at their stop checkpoint.
        assert MAX_ITERATIONS <= delivered < MAX_ITERATIONS + 2 * longest  # 2 trials at a time at most
        assert run.resumed.limit is None and run.resumed.iterations_used >= delivered

    def test_the_resume_goes_on_where_the_stop_left_off(self, contract_run: ContractRun) -> None:
        run = contract_run
        unfinished = [t for t, v in run.study_at_stop.items() if v.state not in FINISHED]
        finished = [t for t, v in run.study_at_stop.items() if v.state in FINISHED]
        assert unfinished, "the stop left no trial running: the resume would prove nothing"
        for trial_id, before in run.study_at_stop.items():  # the same trials, the same configs
            assert run.study[trial_id].params == before.params
        for trial_id in finished:  # never run again
            assert run.journal[trial_id] == run.journal_at_stop[trial_id]
            assert run.study[trial_id].state == run.study_at_stop[trial_id].state
        for trial_id in unfinished:  # continued after the last iteration it delivered
            before = run.journal_at_stop.get(trial_id, [])
            assert run.journal[trial_id][: len(before)] == before
            assert run.study[trial_id].state in FINISHED
        # The best trial after the resume is at least the best before it.
        assert (run.resumed.best or {})["value"] >= (run.stopped.best or {"value": float("-inf")})["value"]
        # Only the missing trials were created: the stop's trials are all there, and no more than num_samples.
        assert set(run.study_at_stop) < set(run.study) and len(run.study) == NUM_SAMPLES

    def test_the_journal_the_study_and_the_ledger_agree(self, contract_run: ContractRun) -> None:
        run = contract_run
        expected = {
            "completed": optuna.trial.TrialState.COMPLETE,
            "pruned": optuna.trial.TrialState.PRUNED,
            "failed": optuna.trial.TrialState.FAIL,
            "diverged": optuna.trial.TrialState.FAIL,
        }
        records = {r["trial_id"]: r for r in run.resumed.trial_records}
        assert set(records) == set(run.study) == set(run.journal)
        for trial_id, record in records.items():
            assert run.study[trial_id].state == expected[record["outcome"]], (trial_id, record)
            assert record["iterations"] == run.journal[trial_id][-1]["iteration"], (trial_id, record)
        counts = {
            outcome: sum(1 for r in records.values() if r["outcome"] == outcome) for outcome in expected
        }
        assert {k: v for k, v in counts.items() if v} == {k: v for k, v in run.resumed.trials.items() if v}
        if run.integrity is not None:  # MLflow too: one child run per trial, each step once
            assert run.integrity["children"] == NUM_SAMPLES

    def test_the_stop_killed_the_running_trials_runs_and_the_resume_finished_the_same_runs(
        self, contract_run: ContractRun
    ) -> None:
        run = contract_run
        if run.integrity is None:
            pytest.skip("a run without tracking")
        killed = [run_id for run_id, status in run.runs_at_stop.items() if status == "KILLED"]
        assert killed and "RUNNING" not in run.runs_at_stop.values(), run.runs_at_stop
        assert all(run.runs[run_id] == "FINISHED" for run_id in killed)  # the same runs, reopened and ended
        assert set(run.runs_at_stop) < set(run.runs) and len(run.runs) == NUM_SAMPLES

    def test_a_trial_the_driver_died_sampling_gets_its_missing_parameters_and_runs(
        self, contract_run: ContractRun
    ) -> None:
        run = contract_run
        study = optuna.load_study(study_name=run.loaded.spec.name, storage=run.paths.optuna_url)
        trial = study.trials[run.partial_number]
        assert set(trial.params) == {"batch_size", "epochs", "learning_rate"}, trial.params
        assert trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED), trial.state
        trial_id = str(backend_trial_id(trial))
        assert trial_id not in run.study_at_stop and run.journal[trial_id], "it ran under a new id of its own"
