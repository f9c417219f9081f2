"""Reconciling a dead driver's records (sweeps/runner/reconcile.py), fast: no Ray run.

The study is a real Optuna study in tmp SQLite written by the searcher's own logic
(:class:`~sweeps.search.truthful_study.TruthfulStudy`), the journal a real
``results.jsonl`` written by :class:`~sweeps.store.journal.ResultJournal`, and Ray's
snapshot, where there is one, a hand-written ``experiment_state-*.json`` whose trials Ray's
own serializer wrote (:func:`~sweeps.ray_backend.snapshot.orphan_trial_json`), with a
``search_gen_state-*.json`` pickled as Ray pickles it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from sweeps.backend.resume import delivered_for
from sweeps.outcomes import Outcome
from sweeps.ray_backend import RayBackend
from sweeps.runner.reconcile import LOST_WITH_DRIVER, Resumption, reconcile, record_from_study
from sweeps.runner.resume import open_study
from sweeps.search.truthful_study import TruthfulStudy, open_truthful_study
from sweeps.spec.loading import LoadedSpec, validate_spec
from sweeps.store.journal import JOURNAL_FILE, ResultJournal, read_journal
from sweeps.store.state import SweepPaths, sweep_paths
from sweeps.store.study_records import BACKEND_TRIAL_ID_ATTR, RECORD_ATTR, backend_trial_id
from tests.conftest import small_spec

TOTAL = 30


def result(iteration: int, value: float = 0.5, **extra: Any) -> dict[str, Any]:
    return {
        "iteration": iteration,
        "total_iterations": TOTAL,
        "samples_seen": 64 * iteration,
        "val_accuracy": value,
        **extra,
    }


class Sweep:
    """A sweep folder as a killed driver leaves it: the study, the journal, maybe Ray's snapshot."""

    def __init__(self, tmp_path: Path, num_samples: int) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        raw = small_spec(storage=str(tmp_path), num_samples=num_samples)
        raw["search_space"]["epochs"] = 2  # a fixed value: in every config, not in the study
        self.loaded: LoadedSpec = validate_spec(raw, tmp_path / "spec.yaml")
        self.paths: SweepPaths = sweep_paths(tmp_path, "tiny")
        self.paths.directory.mkdir(parents=True)
        self.searcher: TruthfulStudy = open_truthful_study(self.loaded.spec, self.paths)
        self.journal = ResultJournal(self.paths.directory / JOURNAL_FILE)

    def trial(self, trial_id: str, *results: dict[str, Any], told: bool | None = None) -> dict[str, Any]:
        """A trial the searcher asked for, whose ``results`` reached the journal (and the study);
        ``told``: the study heard its end (True: with an error)."""
        config = self.searcher.ask(trial_id)
        if results:
            self.journal.append(trial_id, *results)
            self.searcher.report(trial_id, list(results))
        if told is not None:
            self.searcher.finish(trial_id, list(results) or None, error=told)
        return config

    def reconcile(self) -> Resumption:
        self.journal.close()
        return reconcile(
            self.paths,
            self.loaded,
            open_study(self.paths, self.loaded),
            read_journal(self.paths.directory / JOURNAL_FILE),
            RayBackend(),
        )

    def study(self) -> dict[str, optuna.trial.FrozenTrial]:
        """The study's trials by Ray trial id, as a fresh reader sees them."""
        trials = open_study(self.paths, self.loaded).get_trials()
        return {backend_trial_id(t) or f"#{t.number}": t for t in trials}


# -- no Ray snapshot: the driver died before Ray's first one ----------------------------------


def test_without_a_snapshot_trials_finished_by_the_journal_are_told_and_the_rest_are_lost(
    tmp_path: Path,
) -> None:
    sweep = Sweep(tmp_path, num_samples=7)
    configs = {
        "tdone": sweep.trial("tdone", result(10), result(TOTAL, 0.8), told=False),  # the study heard its end
        "tasha": sweep.trial("tasha", result(10, 0.3, done=True)),  # ASHA stopped it; the study missed it
        "tall": sweep.trial("tall", result(10), result(TOTAL, 0.7)),  # ran all its iterations
        "tdiv": sweep.trial("tdiv", result(10), result(12, float("nan"), diverged=True)),
        "tmid": sweep.trial("tmid", result(10, 0.4)),  # was running: nothing to restart it from
        "tnew": sweep.trial("tnew"),  # started, never reported
    }
    resumption = sweep.reconcile()

    study = sweep.study()
    assert {k: (t.state, t.user_attrs[RECORD_ATTR]["outcome"]) for k, t in study.items()} == {
        "tdone": (TrialState.COMPLETE, "completed"),
        "tasha": (TrialState.PRUNED, "pruned"),
        "tall": (TrialState.COMPLETE, "completed"),
        "tdiv": (TrialState.FAIL, "diverged"),
        "tmid": (TrialState.FAIL, "failed"),
        "tnew": (TrialState.FAIL, "failed"),
    }
    assert study["tall"].value == 0.7 and study["tasha"].user_attrs[RECORD_ATTR]["iteration"] == 10
    assert study["tmid"].user_attrs[RECORD_ATTR] == {
        "outcome": "failed",
        "iteration": 10,
        "total_iterations": TOTAL,
        "samples_seen": 640,
        "value": 0.4,
        "error": LOST_WITH_DRIVER,
    }
    assert study["tnew"].user_attrs[RECORD_ATTR] == {"outcome": "failed", "error": LOST_WITH_DRIVER}

    assert (resumption.state.restore, resumption.remaining, resumption.trials_so_far) == (False, 1, 6)
    assert resumption.delivered == {}  # nothing continues: a fresh run creates the remaining trial
    assert resumption.trials == [(k, {"epochs": 2, **c}) for k, c in configs.items()]
    records = {r.trial_id: r for r in resumption.records}
    assert {k: r.outcome for k, r in records.items()} == {
        "tdone": "completed",
        "tasha": "pruned",
        "tall": "completed",
        "tdiv": "diverged",
        "tmid": "failed",
        "tnew": "failed",
    }
    assert records["tmid"].error == LOST_WITH_DRIVER and records["tall"].config == {
        "epochs": 2,
        **configs["tall"],
    }
    assert records["tall"].last_result is not None and records["tall"].last_result["val_accuracy"] == 0.7
    assert f"2 trial(s) {LOST_WITH_DRIVER}; recorded as failed" in resumption.notes
    assert "6 trial(s) finished before; 0 continue from their last checkpoint" in resumption.notes[-1]


def test_a_study_written_with_the_old_attribute_name_resumes_the_same(tmp_path: Path) -> None:
    from tests.search.test_truthful_study import as_written_before_the_rename

    sweep = Sweep(tmp_path, num_samples=4)
    done = sweep.trial("tdone", result(10), result(TOTAL, 0.8), told=False)
    sweep.trial("tasha", result(10, 0.3, done=True))  # ASHA stopped it; the study missed it
    sweep.trial("tmid", result(10, 0.4))  # was running: nothing to restart it from
    as_written_before_the_rename(sweep.paths.study_file)
    resumption = sweep.reconcile()
    study = sweep.study()
    assert {k: t.user_attrs[RECORD_ATTR]["outcome"] for k, t in study.items()} == {
        "tdone": "completed",
        "tasha": "pruned",
        "tmid": "failed",
    }
    assert [trial_id for trial_id, _ in resumption.trials] == ["tdone", "tasha", "tmid"]
    assert resumption.trials[0][1] == {"epochs": 2, **done}
    assert {r.trial_id: r.outcome for r in resumption.records} == {
        "tdone": "completed",
        "tasha": "pruned",
        "tmid": "failed",
    }
    assert (resumption.remaining, resumption.trials_so_far) == (1, 3)


def test_the_journals_last_delivery_that_the_study_missed_is_written_before_the_trial_is_told(
    tmp_path: Path,
) -> None:
    """Tune shows a result on which a trial stops to the journal before the searcher hears
    of the end; a driver killed in between left the study without that delivery's values
    (found by test_kill[batched-8]: a COMPLETE trial with steps 1-40 of its 80)."""
    sweep = Sweep(tmp_path, num_samples=3)
    sweep.trial("tall", result(10, 0.3), result(20, 0.4))
    sweep.journal.append("tall", result(25, 0.5), result(TOTAL, 0.7))  # the delivery ASHA stopped it on
    sweep.trial("tasha", result(10, 0.3))
    sweep.journal.append("tasha", result(20, 0.2, done=True))
    sweep.trial("tmid", result(10, 0.4))
    sweep.journal.append("tmid", result(15, 0.45))  # a continuing trial's worker never sends it again
    sweep.reconcile()
    study = sweep.study()
    assert study["tall"].state == TrialState.COMPLETE and study["tall"].value == 0.7
    assert study["tall"].intermediate_values == {10: 0.3, 20: 0.4, 25: 0.5, TOTAL: 0.7}
    assert study["tasha"].state == TrialState.PRUNED and study["tasha"].intermediate_values == {
        10: 0.3,
        20: 0.2,
    }
    assert study["tmid"].intermediate_values == {10: 0.4, 15: 0.45}
    # A reader of the resumed study (the searcher) counts them as reported: none twice.
    assert open_truthful_study(sweep.loaded.spec, sweep.paths)._reported_steps["tmid"] == {10, 15}


def test_reconciling_twice_changes_nothing_more(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path, num_samples=3)
    sweep.trial("tasha", result(10, 0.3, done=True))
    sweep.trial("tmid", result(10, 0.4))
    first = sweep.reconcile()
    before = {k: (t.state, t.value, t.user_attrs) for k, t in sweep.study().items()}
    second = sweep.reconcile()
    assert {k: (t.state, t.value, t.user_attrs) for k, t in sweep.study().items()} == before
    assert [(r.trial_id, r.outcome) for r in second.records] == [
        (r.trial_id, r.outcome) for r in first.records
    ]
    assert not any(LOST_WITH_DRIVER in note for note in second.notes)  # recorded the first time


def test_a_trial_with_no_ray_id_yet_gets_one_and_every_parameter(tmp_path: Path) -> None:
    """The driver died inside Optuna's `ask`: the trial has some parameters and no Ray trial id."""
    sweep = Sweep(tmp_path, num_samples=3)
    sweep.trial("t1", result(TOTAL, 0.6), told=False)
    half = sweep.searcher.study.ask()
    half.suggest_categorical("batch_size", [64, 128])  # learning_rate was next
    resumption = sweep.reconcile()

    trial = open_study(sweep.paths, sweep.loaded).get_trials()[1]
    new_id = trial.user_attrs[BACKEND_TRIAL_ID_ATTR]
    assert isinstance(new_id, str) and new_id not in ("t1", "") and len(new_id) >= 5
    assert (
        set(trial.params) == {"batch_size", "learning_rate"} and 1e-3 <= trial.params["learning_rate"] <= 1e-1
    )
    assert resumption.trials[1] == (new_id, {"epochs": 2, **trial.params})
    # No snapshot to start it from, so it is lost like any trial that was running.
    assert trial.state == TrialState.FAIL and trial.user_attrs[RECORD_ATTR]["error"] == LOST_WITH_DRIVER


# -- records of the study, for summaries that span resumed runs -------------------------------


@pytest.mark.parametrize(
    ("journaled", "expected_iteration", "expected_value"),
    [
        ([result(10, 0.4), result(20, 0.6)], 20, 0.6),  # the journal got further than the record: it wins
        ([result(5, 0.1)], 10, 0.4),  # the record is newer: its numbers and value win
        ([], 10, 0.4),  # no journal (lost, or an older sweep): the record alone
    ],
)
def test_a_record_from_the_study_takes_the_newer_of_record_and_journal(
    tmp_path: Path, journaled: list[dict[str, Any]], expected_iteration: int, expected_value: float
) -> None:
    sweep = Sweep(tmp_path, num_samples=1)
    sweep.trial("t1", result(10, 0.4), told=False)  # pruned at 10
    frozen = open_study(sweep.paths, sweep.loaded).get_trials()[0]
    config = {"epochs": 2, **frozen.params}  # the trial's config (sweeps.spec.scaling.trial_config)
    record = record_from_study(frozen, config, journaled, "val_accuracy")
    assert record.trial_id == "t1" and record.outcome == Outcome.PRUNED and record.error is None
    assert record.config == config
    assert record.last_result is not None
    assert (record.last_result["iteration"], record.last_result["val_accuracy"]) == (
        expected_iteration,
        expected_value,
    )


def test_a_record_of_a_trial_the_study_never_finished_is_failed(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path, num_samples=1)
    sweep.trial("t1", result(10, 0.4))
    frozen = open_study(sweep.paths, sweep.loaded).get_trials()[0]
    record = record_from_study(frozen, {}, [result(10, 0.4)], "val_accuracy")
    assert record.outcome == Outcome.FAILED and record.last_result == result(10, 0.4)


def test_delivered_names_each_continued_trials_last_iteration() -> None:
    journal = {"a": [result(10), result(20)], "b": [result(5)], "c": []}
    assert delivered_for(journal, ["a", "c", "missing"]) == {"a": 20}


# -- Ray's snapshot ---------------------------------------------------------------------------


def write_snapshot(
    sweep: Sweep,
    session: str,
    trials: list[tuple[str, str, dict[str, Any]]],
    generator: bool = True,
    torn_newer: bool = False,
) -> Path:
    """``experiment_state-<session>.json`` with ``trials`` (id, Ray status, last result), each
    serialized by Ray's own Trial; and, with ``generator``, the trial generator's pickled state."""
    from ray import cloudpickle

    from sweeps.ray_backend.snapshot import orphan_trial_json

    ray_directory = sweep.paths.ray_directory
    ray_directory.mkdir(parents=True, exist_ok=True)
    template = {
        "trainable_name": "run_trial",
        "resources": {"CPU": 1, "GPU": 0},
        "num_to_keep": 2,
        "max_failures": 1,
    }
    trial_data = []
    numbers = sweep.searcher.optuna_numbers
    for trial_id, status, last_result in trials:
        config = {"epochs": 2, **sweep.study()[trial_id].params}
        state_json, metadata_json = orphan_trial_json(
            sweep.paths.directory, trial_id, config, {}, f"{numbers[trial_id] + 1}_", None, template
        )
        state, metadata = json.loads(state_json), json.loads(metadata_json)
        state["status"] = status
        metadata["last_result"] = last_result
        trial_data.append([json.dumps(state), json.dumps(metadata)])
    path = ray_directory / f"experiment_state-{session}.json"
    path.write_text(
        json.dumps(
            {
                "trial_data": trial_data,
                "runner_data": {"_stopper": "pickled", "_should_stop_experiment": True},
            }
        )
    )
    if torn_newer:
        (ray_directory / f"experiment_state-{session}9.json").write_text(path.read_text()[:100])
    if generator:
        state = {
            "counter": len(trials),
            "total_samples": sweep.loaded.spec.num_samples,
            "finished": False,
            "name:ConcurrencyLimiter": {
                "live_trials": {"stale"},
                "num_unfinished_live_trials": 1,
                "cached_results": {"x": 1},
            },
        }
        (ray_directory / f"search_gen_state-{session}.json").write_bytes(cloudpickle.dumps(state))  # type: ignore[no-untyped-call]
    return path


def test_a_snapshot_without_the_generators_state_is_not_restored(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path, num_samples=2)
    sweep.trial("t1", result(10, 0.4))
    write_snapshot(sweep, "2026-12-01_10-00-00", [("t1", "RUNNING", result(10, 0.4))], generator=False)
    resumption = sweep.reconcile()
    assert not resumption.state.restore and resumption.remaining == 1
    assert sweep.study()["t1"].user_attrs[RECORD_ATTR]["error"] == LOST_WITH_DRIVER


def test_a_torn_newer_snapshot_is_set_aside_and_the_older_one_read(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path, num_samples=1)
    sweep.trial("t1", result(10, 0.4))
    write_snapshot(sweep, "2026-12-01_10-00-00", [("t1", "RUNNING", result(10, 0.4))], torn_newer=True)
    resumption = sweep.reconcile()
    torn = sweep.paths.ray_directory / "experiment_state-2026-12-01_10-00-009.json.torn"
    assert torn.is_file() and f"set aside a torn Ray snapshot: {torn.name}" in resumption.notes
    assert resumption.state.restore and resumption.delivered == {
        "t1": 10
    }  # continued from the older snapshot


def test_a_snapshot_is_corrected_to_what_the_study_and_the_journal_know(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path, num_samples=6)
    sweep.trial("tdone", result(TOTAL, 0.8), told=False)  # finished; the snapshot still says RUNNING
    sweep.trial(
        "tlate", result(10, 0.3), result(TOTAL, 0.7)
    )  # the journal saw it end; study and snapshot did not
    sweep.trial("terr", result(10, 0.2))  # Ray recorded its error; the study missed it
    sweep.trial(
        "trun", result(10, 0.5, checkpoint_dir_name="checkpoint_000000"), result(20, 0.6)
    )  # Ray restarts it
    sweep.trial(
        "tgone", result(10, 0.4, checkpoint_dir_name="checkpoint_000000"), result(15, 0.45)
    )  # after the snapshot
    folder = sweep.paths.ray_directory / "run_trial_tgone_00004_5_2026-12-01_10-00-00" / "checkpoint_000000"
    folder.mkdir(parents=True)
    snapshot = write_snapshot(
        sweep,
        "2026-12-01_10-00-00",
        [
            ("tdone", "RUNNING", result(10)),
            ("tlate", "RUNNING", result(10)),
            ("terr", "ERROR", result(10, 0.2)),
            ("trun", "RUNNING", result(10, 0.5)),
        ],
    )
    resumption = sweep.reconcile()

    study = sweep.study()
    assert {k: t.state for k, t in study.items()} == {
        "tdone": TrialState.COMPLETE,
        "tlate": TrialState.COMPLETE,
        "terr": TrialState.FAIL,
        "trun": TrialState.RUNNING,
        "tgone": TrialState.RUNNING,
    }
    corrected = json.loads(snapshot.read_text())
    statuses = {json.loads(t)["trial_id"]: json.loads(t)["status"] for t, _ in corrected["trial_data"]}
    # Finished trials are TERMINATED (an ERROR stays); the trial Ray never saw is added back.
    assert statuses == {
        "tdone": "TERMINATED",
        "tlate": "TERMINATED",
        "terr": "ERROR",
        "trun": "RUNNING",
        "tgone": "PENDING",
    }
    added = json.loads(next(t for t, _ in corrected["trial_data"] if json.loads(t)["trial_id"] == "tgone"))
    assert str(folder) in json.dumps(added)  # restarts from its last checkpoint the journal saw completed
    assert (
        "_stopper" not in corrected["runner_data"]
        and corrected["runner_data"]["_should_stop_experiment"] is False
    )

    from ray import cloudpickle

    generator = cloudpickle.loads(
        next(sweep.paths.ray_directory.glob("search_gen_state-*.json")).read_bytes()
    )
    assert (generator["counter"], generator["total_samples"], generator["finished"]) == (5, 6, False)
    assert generator["name:ConcurrencyLimiter"] == {
        "live_trials": {"trun", "tgone"},
        "num_unfinished_live_trials": 2,
        "cached_results": {},
    }

    assert (resumption.state.restore, resumption.trials_so_far, resumption.remaining) == (True, 5, 1)
    assert resumption.delivered == {"trun": 20, "tgone": 15}
    assert {r.trial_id: r.outcome for r in resumption.records} == {
        "tdone": "completed",
        "tlate": "completed",
        "terr": "failed",
    }
    # trun restarts from Ray's last checkpoint (an estimate: all 20 again, no checkpoint seen
    # by the journal up to Ray's horizon exists on disk); tgone from its checkpoint at 10.
    assert (
        "3 trial(s) finished before; 2 continue from their last checkpoint (1 of them restored from "
        "the study and the journal); about 25 iteration(s)"
    ) in resumption.notes[-1]


def test_each_trial_s_bracket_and_stop_come_back_from_the_study_else_the_journal(tmp_path: Path) -> None:
    """The study records a bracket as Tune adds the trial, the journal as it starts: a resumed
    sweep judges each trial in the bracket it had, and its MLflow run keeps the why of a stop."""
    sweep = Sweep(tmp_path, num_samples=4)
    sweep.trial("tboth")
    sweep.searcher.bracket_assigned("tboth", 1)
    sweep.journal.note("tboth", {"bracket": 1})
    sweep.trial("tstudy")
    sweep.searcher.bracket_assigned("tstudy", 0)  # killed before it started: only the study has it
    sweep.trial("tjournal")
    sweep.journal.note("tjournal", {"bracket": 1})  # (a sweep whose study write was lost)
    why = {"stopped_at_rung": 10, "rung_value": 0.3, "rung_cutoff": 0.6}
    sweep.searcher.trial_stopped("tboth", why)
    sweep.trial("tboth", result(10, 0.3, done=True))
    sweep.journal.note("tboth", why)
    sweep.trial("tnone")
    resumption = sweep.reconcile()
    assert resumption.brackets == {"tboth": 1, "tstudy": 0, "tjournal": 1}
    assert resumption.stops == {"tboth": why}
    assert resumption.schedule("tboth") == {"bracket": 1, **why} and resumption.schedule("tstudy") == {
        "bracket": 0
    }
    assert resumption.schedule("tnone") == {}
    assert "tboth" in read_journal(sweep.paths.directory / JOURNAL_FILE)  # schedule lines are not results
    assert all("schedule" not in r for r in read_journal(sweep.paths.directory / JOURNAL_FILE)["tboth"])
