"""A distributed trial through `sweep stop`, Ctrl-C and `kill -9`, then `sweep resume`.

The driver is a real `python -m sweeps run` process on the embedded 2-CPU Ray, and its one
trial is 2 Ray Train workers of 1 CPU, 4 epochs of 23 iterations with a checkpoint after
each. Once the journal holds the epoch-1 checkpoint's report, the test stops the sweep
one of three ways; `sweep resume` must then finish the trial with all its workers, on
fresh processes, from the checkpoint a graceful stop wrote (or, after a kill, the last one
Ray's snapshot saw), the ranks together seeing each sample once in every epoch they
trained again, and the sweep's records (study, journal, MLflow) holding the trial once
with each iteration once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeps.store.journal import read_journal
from sweeps.store.state import read_state, sweep_paths
from tests.conftest import REPO
from tests.ray_backend.test_distributed import BATCH, probe_spec, rank_records
from tests.runner.integrity import check_sweep_integrity
from trainables.digits_mlp import TRAINING_SIZE

pytestmark = pytest.mark.slow

PER_EPOCH, EPOCHS = 23, 4


def sweep(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweeps", *args]


@pytest.mark.parametrize("how", ["sweep stop", "ctrl-c", "kill -9"])
def test_a_distributed_trial_stopped_or_killed_resumes_from_its_checkpoint(tmp_path: Path, how: str) -> None:
    probe_dir = tmp_path / "probe"
    storage = tmp_path / "results"
    spec = probe_spec(tmp_path, "ddp-life", search_space={"batch_size": BATCH, "epochs": EPOCHS, "learning_rate": 0.1},
                      trainable_args={"probe_dir": str(probe_dir), "iteration_seconds": 0.05},
                      checkpoint={"every_epochs": 1})
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
    driver = subprocess.Popen(sweep("run", str(spec), "--json"), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=(tmp_path / "run.err").open("wb"), start_new_session=True)
    journal = storage / "ddp-life" / "results.jsonl"
    try:
        deadline = time.monotonic() + 240
        while not any(int(r["iteration"]) >= PER_EPOCH for rs in _journal(journal).values() for r in rs):
            assert driver.poll() is None, (tmp_path / "run.err").read_text()[-3000:]
            assert time.monotonic() < deadline, "the trial never reached its epoch-1 checkpoint"
            time.sleep(0.05)
        first_attempt = rank_records(probe_dir)
        if how == "kill -9":
            driver.send_signal(signal.SIGKILL)
        elif how == "ctrl-c":
            driver.send_signal(signal.SIGINT)
        else:
            stopped = subprocess.run(sweep("stop", "ddp-life", "--storage", str(storage)), cwd=tmp_path, env=env,
                                     capture_output=True, text=True, timeout=60, check=False)
            assert stopped.returncode == 0, stopped.stderr[-2000:]
        driver.wait(timeout=180)
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # whatever the driver's Ray left behind
        except ProcessLookupError:
            pass
    if how != "kill -9":  # a graceful stop: the trial checkpointed and ended, the sweep is resumable
        assert driver.returncode == 130, (tmp_path / "run.err").read_text()[-3000:]
        assert read_state(sweep_paths(storage, "ddp-life"))["state"] == "stopped"
    reported_before = [int(r["iteration"]) for rs in _journal(journal).values() for r in rs]
    assert reported_before[-1] < PER_EPOCH * EPOCHS, "the trial had finished before it was stopped"

    resumed = subprocess.run(sweep("resume", "ddp-life", "--storage", str(storage), "--json"), cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300, start_new_session=True, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["trials"] == {"completed": 1, "pruned": 0, "diverged": 0, "failed": 0}, summary["trials"]
    assert summary["iterations_used"] == PER_EPOCH * EPOCHS
    check_sweep_integrity(storage, "ddp-life", 1, "val_accuracy")  # the trial once, each step once, none RUNNING
    (results,) = read_journal(journal).values()
    epoch_ends = [PER_EPOCH * e for e in range(1, EPOCHS + 1)]
    # A graceful stop checkpoints (and reports) at the iteration it lands on; a kill does neither.
    assert [int(r["iteration"]) for r in results] == sorted({*epoch_ends, *reported_before})

    # The resumed attempt ran both ranks on fresh processes from a checkpoint: after a
    # graceful stop, the one the stop wrote (after iteration 23, when the stop came) or a
    # later one; after a kill, the last one Ray's snapshot saw (at most a checkpoint period
    # old, so possibly none: then from the start).
    (before,) = first_attempt.values()
    (ranks,) = rank_records(probe_dir).values()
    assert {r["pid"] for r in ranks}.isdisjoint(r["pid"] for r in before)
    restarted_at = ranks[0]["resumed_from"]
    assert ranks[1]["resumed_from"] == restarted_at
    checkpoints = [int(r["iteration"]) for r in results if r.get("checkpoint_dir_name")]
    if how == "kill -9":
        assert restarted_at in {0, *(i for i in checkpoints if i <= reported_before[-1])}, (restarted_at, reported_before)
    else:
        assert restarted_at in checkpoints and PER_EPOCH < restarted_at <= reported_before[-1], (restarted_at, reported_before)
    # Together the ranks saw each sample once in every epoch they went through again (fit
    # shuffles the checkpoint's epoch anew and skips the batches done before it).
    assert [len(r["batches"]) for r in ranks] == [PER_EPOCH * (EPOCHS - restarted_at // PER_EPOCH)] * 2
    for epoch in range(EPOCHS - restarted_at // PER_EPOCH):
        window = slice(epoch * PER_EPOCH, (epoch + 1) * PER_EPOCH)
        seen = [i for r in ranks for batch in r["batches"][window] for i in batch]
        assert sorted(seen) == list(range(TRAINING_SIZE)), epoch


def _journal(path: Path) -> dict[str, list[dict[str, object]]]:
    try:
        return read_journal(path)
    except (OSError, ValueError):
        return {}
