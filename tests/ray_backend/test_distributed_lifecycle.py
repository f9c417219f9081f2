"""A distributed trial through `sweep stop`, Ctrl-C and `kill -9`, each followed by `sweep resume`.

One sweep, four driver processes on the embedded 2-CPU Ray: `python -m sweeps run`, then
`sweep resume` three times. Its one trial is 2 Ray Train workers of 1 CPU, 8 epochs of
23 iterations with a checkpoint after each. Each driver is interrupted once the journal
holds a checkpoint it reported itself: by `sweep stop`, by Ctrl-C, by `kill -9`; the last
resume runs the trial to its end. Every resumed attempt must run both ranks on fresh
processes from the right checkpoint (after a graceful stop: the stop's own, taken after the
request; after a kill: the last one Ray's snapshot saw), the ranks together seeing each
sample once in every epoch, and the study, the journal and MLflow must hold the trial
once with each iteration once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sweeps.store.journal import read_journal
from sweeps.store.state import read_state, sweep_paths
from tests.conftest import REPO
from tests.ray_backend.test_distributed import BATCH, probe_spec, rank_records
from tests.runner.integrity import check_sweep_integrity
from trainables.digits_mlp import TRAINING_SIZE

pytestmark = pytest.mark.slow

PER_EPOCH, EPOCHS = 23, 8
TOTAL = PER_EPOCH * EPOCHS


class Sweep:
    """The sweep's folder and its drivers, one at a time."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path, self.probe_dir, self.storage = tmp_path, tmp_path / "probe", tmp_path / "results"
        self.spec = probe_spec(
            tmp_path,
            "ddp-life",
            search_space={"batch_size": BATCH, "epochs": EPOCHS, "learning_rate": 0.1},
            trainable_args={"probe_dir": str(self.probe_dir), "iteration_seconds": 0.05},
            checkpoint={"every_epochs": 1},
        )
        self.env = dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
        self.journal = self.storage / "ddp-life" / "results.jsonl"
        self.drivers = 0

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "sweeps", *args]

    def start(self) -> subprocess.Popen[bytes]:
        self.drivers += 1
        args = (
            ("run", str(self.spec))
            if self.drivers == 1
            else ("resume", "ddp-life", "--storage", str(self.storage))
        )
        self.err = self.tmp_path / f"driver{self.drivers}.err"
        return subprocess.Popen(
            self.command(*args, "--json"),
            cwd=self.tmp_path,
            env=self.env,
            start_new_session=True,
            stdout=(self.tmp_path / f"driver{self.drivers}.out").open("wb"),
            stderr=self.err.open("wb"),
        )

    def checkpoints(self) -> list[int]:
        """Iterations of the journal's reports that came with a checkpoint, in order."""
        try:
            results = next(iter(read_journal(self.journal).values()), [])
        except (OSError, ValueError):  # not written yet, or a line being written
            return []
        return [int(r["iteration"]) for r in results if r.get("checkpoint_dir_name")]

    def wait_for_a_checkpoint_after(self, iteration: int, driver: subprocess.Popen[bytes]) -> int:
        deadline = time.monotonic() + 240
        while not any(i > iteration for i in self.checkpoints()):
            assert driver.poll() is None, self.err.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no checkpoint after iteration {iteration}"
            time.sleep(0.05)
        return max(self.checkpoints())

    def attempt(self) -> dict[str, Any]:
        """What the trial's current attempt recorded: both ranks' pids, where they restarted, batches."""
        (ranks,) = rank_records(self.probe_dir).values()
        assert [r["rank"] for r in ranks] == [0, 1]
        assert ranks[0].get("resumed_from") == ranks[1].get("resumed_from")
        return {
            "pids": {r["pid"] for r in ranks},
            "resumed_from": ranks[0].get("resumed_from"),
            "ranks": ranks,
        }

    def end(self, driver: subprocess.Popen[bytes]) -> None:
        try:
            driver.wait(timeout=180)
        finally:
            try:
                os.killpg(driver.pid, signal.SIGKILL)  # whatever the driver's Ray left behind
            except ProcessLookupError:
                pass


def test_a_distributed_trial_stopped_interrupted_and_killed_resumes_each_time_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    sweep = Sweep(tmp_path)
    #: How each driver ended, the last checkpoint in the journal when it was told to, and
    #: the last one when it had ended: where the next attempt may restart.
    ends: list[tuple[str, int, int]] = []
    seen_pids: set[int] = set()
    reached = 0
    for how in ("sweep stop", "ctrl-c", "kill -9", None):
        driver = sweep.start()
        if how is None:
            sweep.end(driver)
            assert driver.returncode == 0, sweep.err.read_text()[-3000:]
            break
        reached = sweep.wait_for_a_checkpoint_after(reached, driver)  # this driver's attempt has trained
        attempt = sweep.attempt()
        if ends:
            _check_restart(ends[-1], attempt["resumed_from"], sweep.checkpoints())
        assert attempt["pids"].isdisjoint(seen_pids), "a resumed attempt must run on fresh workers"
        seen_pids |= attempt["pids"]
        if how == "kill -9":
            driver.send_signal(signal.SIGKILL)
        elif how == "ctrl-c":
            driver.send_signal(signal.SIGINT)
        else:
            stopped = subprocess.run(
                sweep.command("stop", "ddp-life", "--storage", str(sweep.storage)),
                cwd=tmp_path,
                env=sweep.env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert stopped.returncode == 0, stopped.stderr[-2000:]
        sweep.end(driver)
        if how != "kill -9":  # graceful: the trial checkpointed at the stop; the sweep is resumable
            assert driver.returncode == 130, sweep.err.read_text()[-3000:]
            assert read_state(sweep_paths(sweep.storage, "ddp-life"))["state"] == "stopped"
        ends.append((how, reached, max(sweep.checkpoints())))
        reached = ends[-1][2]
        assert reached < TOTAL, "the trial had finished before the interruption"

    summary = json.loads((tmp_path / f"driver{sweep.drivers}.out").read_text().strip().splitlines()[-1])
    assert summary["trials"] == {"completed": 1, "pruned": 0, "diverged": 0, "failed": 0}, summary["trials"]
    assert summary["iterations_used"] == TOTAL
    check_sweep_integrity(
        sweep.storage, "ddp-life", 1, "val_accuracy"
    )  # the trial once, each step once, none RUNNING
    (results,) = read_journal(sweep.journal).values()
    iterations = [int(r["iteration"]) for r in results]
    assert iterations == sorted(set(iterations)) and iterations[-1] == TOTAL
    assert {PER_EPOCH * e for e in range(1, EPOCHS + 1)} <= set(iterations)

    final = sweep.attempt()
    _check_restart(ends[-1], final["resumed_from"], sweep.checkpoints())
    assert final["pids"].isdisjoint(seen_pids)
    # Together the ranks saw each sample once in every epoch of the last attempt (fit
    # shuffles the checkpoint's epoch anew and skips the batches done before it).
    epochs = EPOCHS - final["resumed_from"] // PER_EPOCH
    assert [len(r["batches"]) for r in final["ranks"]] == [PER_EPOCH * epochs] * 2
    for epoch in range(epochs):
        window = slice(epoch * PER_EPOCH, (epoch + 1) * PER_EPOCH)
        seen = [i for r in final["ranks"] for batch in r["batches"][window] for i in batch]
        assert sorted(seen) == list(range(TRAINING_SIZE)), epoch


def _check_restart(end: tuple[str, int, int], restarted: int, checkpoints: list[int]) -> None:
    """Where an attempt restarted, given how the driver before it ended."""
    how, at_request, at_end = end
    assert restarted in checkpoints, (how, restarted, checkpoints)
    if how == "kill -9":  # the last checkpoint Ray's snapshot saw: up to a snapshot period old
        assert restarted <= at_end, (how, restarted, at_end)
    else:  # the stop's own checkpoint, taken after the request, or a later one
        assert at_request < restarted <= at_end, (how, restarted, at_request, at_end)
