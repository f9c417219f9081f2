"""``failure.trial_timeout``: a trial that hangs after its first report is stopped, failed and retried.

Real Ray (the session's), real MLflow and Optuna: the trainable reports once, then
sleeps in a loop. Without the timeout the sweep never ends (the test's own timeout
fails it); with it, each trial's worker is killed ``trial_timeout`` seconds after its
last report reached the driver, retried ``failure.max_retries`` times, and recorded as
failed with "no report for N s" in the ledger, `sweep status`, MLflow's error.txt and
Optuna (FAIL).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeps.cli import main
from sweeps.errors import SpecError
from sweeps.ray_backend import RayBackend
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.spec.loading import load_spec
from tests.conftest import small_spec

HANGING = f"{Path(__file__).parents[1] / 'runner' / 'hanging_trainable.py'}:train"
TIMEOUT = 3.0


def hanging_spec(folder: Path, **failure: Any) -> Path:
    attempts = folder / "attempts"
    attempts.mkdir(exist_ok=True)
    spec = small_spec(
        name="hang",
        storage=str(folder / "results"),
        trainable=HANGING,
        num_samples=2,
        seed=2,
        trainable_args={"release_file": str(folder / "never"), "attempts_dir": str(attempts)},
        # 4 epochs of 10 iterations, a checkpoint and a report at each: a retry resumes
        # from the last checkpoint and hangs after its next report, so it fails again.
        search_space={
            "batch_size": 100,
            "epochs": 4,
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        scheduler={"type": "none"},
        failure={"max_retries": 1, "max_failed_fraction": 1.0, **failure},
    )
    path = folder / "hang.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_hung_trial_is_stopped_failed_with_its_reason_and_retried(
    ray_session: Any,
    tmp_path: Path,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    loaded = load_spec(hanging_spec(tmp_path, trial_timeout=TIMEOUT), [])
    started = time.monotonic()
    summary = run_sweep(loaded, RunOptions(RayBackend(), live=False, overwrite=True))
    wall = time.monotonic() - started
    assert summary.trials["failed"] == 2 and summary.aborted is None, summary.trials
    # 1 attempt + max_retries = 1 retry each: a timeout is retried like any failure.
    assert sorted(len(f.read_text().splitlines()) for f in (tmp_path / "attempts").iterdir()) == [2, 2]

    storage = tmp_path / "results"
    study = optuna.load_study(study_name="hang", storage=f"sqlite:///{storage / 'hang' / 'optuna.db'}")
    assert Counter(t.state.name for t in study.get_trials()) == {"FAIL": 2}
    # The FAIL trials say why: the timeout, not the RayActorError its kill caused.
    assert all(
        t.user_attrs["error"].startswith("Stopped by the sweep: no report for") for t in study.get_trials()
    )
    assert all("no report for" in line for line in summary.failures) and summary.failures

    client = MlflowClient(f"sqlite:///{storage / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("hang").experiment_id])
    children = [r for r in runs if r.data.tags.get("sweep.role") == "trial"]
    assert len(children) == 2 and {r.info.status for r in children} == {"FAILED"}
    for run in children:
        error = Path(
            client.download_artifacts(run.info.run_id, "error.txt", str(tmp_path / run.info.run_id))
        ).read_text()
        assert f"no report for {TIMEOUT:.0f} s" in error or f"no report for {TIMEOUT + 1:.0f} s" in error, (
            error
        )

    monkeypatch.setenv("COLUMNS", "400")  # the status table unwrapped
    assert main(["status", "hang", "--storage", str(storage)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.count("no report for") == 2, out
    print(f"2 hung trials, timeout {TIMEOUT:g} s, 2 attempts each: sweep {wall:.1f} s")


@pytest.mark.parametrize("value", [0, -5])
def test_a_trial_timeout_that_is_not_positive_is_refused(tmp_path: Path, value: float) -> None:
    with pytest.raises(SpecError, match="trial_timeout"):
        load_spec(hanging_spec(tmp_path, trial_timeout=value), [])


def test_trial_timeout_is_off_by_default(tmp_path: Path) -> None:
    assert load_spec(hanging_spec(tmp_path), []).spec.failure.trial_timeout is None
