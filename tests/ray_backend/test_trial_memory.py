"""Finished trials keep Tune's running analysis of the sweep's metric only; running ones keep all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from ray.tune import Callback

from sweeps.ray_backend import RayBackend
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.spec.loading import load_spec
from tests.conftest import small_spec


class AnalysisRecorder(Callback):
    """The metrics Tune analyses for each trial: at its last result, and at the sweep's end."""

    def __init__(self) -> None:
        self.while_running: set[str] = set()  # Tune updates the analysis just after this hook
        self.at_end: dict[str, set[str]] = {}

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.while_running |= set(trial.run_metadata.metric_analysis)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        for trial in trials:
            self.at_end[trial.trial_id] = set(trial.run_metadata.metric_analysis) | set(
                trial.run_metadata.metric_n_steps
            )
            # One analysis left in the snapshot's cached JSON, not a stale one of every metric.
            assert trial.run_metadata.get_json_state().count('"last-5-avg"') == 1


def test_finished_trials_forget_every_metric_but_the_sweeps(ray_session: Any, tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(small_spec(name="memory", storage=str(tmp_path / "results"), num_samples=4))
    )
    recorder = AnalysisRecorder()
    summary = run_sweep(load_spec(path, []), RunOptions(RayBackend(callbacks=[recorder]), live=False))
    assert sum(summary.trials.values()) == 4
    assert len(recorder.at_end) == 4
    assert {"val_accuracy", "epoch", "iteration"} <= recorder.while_running, recorder.while_running
    for trial_id, analysed in recorder.at_end.items():
        assert analysed == {"val_accuracy"}, (trial_id, analysed)
