"""`sweep run` as a user sees it in a real terminal: tmux, 80 columns by 24 lines.

One small sweep of a trainable that prints, reports off ASHA's milestones and never
checkpoints. In the terminal: the first line comes before Ray starts; the warnings each
start a line of their own (not glued to the live view's last row), wrap between words at
80 columns, and the "left no checkpoint" hint names the real cause, once. Then the same
sweep's trial output: kept in each trial's folder, attached to its MLflow run, and shown
by `sweep logs`.

tmux must be installed (`make system-deps`): without it this test fails, it never skips.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, small_spec

pytestmark = pytest.mark.slow

TRAINABLE = f"{Path(__file__).with_name('chatty_trainable.py')}:train"
COLUMNS, LINES = 80, 24


def _chatty_spec(tmp_path: Path) -> Path:
    spec = small_spec(
        name="chatty",
        storage=str(tmp_path / "results"),
        trainable=TRAINABLE,
        num_samples=4,
        seed=3,
        search_space={
            "batch_size": 50,
            "epochs": 2,
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1},
        },
        scheduler={"type": "asha", "grace_period": 10, "reduction_factor": 2},
    )
    path = tmp_path / "chatty.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


class Tmux:
    """A tmux server of this test's own (its own socket), so nothing else's is touched."""

    def __init__(self, folder: Path) -> None:
        self.socket = str(folder / "tmux.sock")

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", self.socket, *args], check=True, capture_output=True, text=True
        ).stdout

    def screen(self) -> list[str]:
        """Every line the pane showed, scrollback included, as drawn (not re-joined)."""
        return self("capture-pane", "-p", "-S", "-2000", "-t", "sweep").rstrip("\n").split("\n")


@pytest.fixture(scope="module")
def terminal_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    assert shutil.which("tmux"), "tmux is missing: `make system-deps` installs it"
    folder = tmp_path_factory.mktemp("terminal")
    spec = _chatty_spec(folder)
    tmux = Tmux(folder)
    done = folder / "exit-code"
    env = f"PYTHONPATH={shlex.quote(str(REPO))} RAY_USAGE_STATS_ENABLED=0 TERM=xterm-256color"
    command = (
        f"cd {shlex.quote(str(folder))} && env {env} {shlex.quote(sys.executable)} -m sweeps run "
        f"{shlex.quote(str(spec))}; echo $? > {shlex.quote(str(done))}; sleep 600"
    )
    tmux("new-session", "-d", "-s", "sweep", "-x", str(COLUMNS), "-y", str(LINES), command)
    try:
        deadline = time.monotonic() + 300
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        screen = tmux.screen()
    finally:
        subprocess.run(["tmux", "-S", tmux.socket, "kill-server"], check=False, capture_output=True)
    assert done.exists(), "\n".join(screen)
    return {"code": int(done.read_text()), "screen": screen, "storage": folder / "results"}


def _flat(lines: list[str]) -> str:
    """The lines joined with single spaces: a word cut by the terminal would show split."""
    return " ".join(" ".join(lines).split())


def test_the_first_line_comes_before_ray_starts_in_a_terminal(terminal_sweep: dict[str, object]) -> None:
    screen = terminal_sweep["screen"]
    assert isinstance(screen, list) and terminal_sweep["code"] == 0, "\n".join(screen)
    first = next(i for i, line in enumerate(screen) if line.startswith("Sweep chatty: starting 4 trials"))
    ray = next(i for i, line in enumerate(screen) if "starting Ray (local" in line)
    trials = next(i for i, line in enumerate(screen) if "first trials starting" in line)
    assert first < ray < trials, "\n".join(screen)
    assert all(len(line) <= COLUMNS for line in screen)


def test_warnings_start_their_own_lines_wrap_between_words_and_are_given_once(
    terminal_sweep: dict[str, object],
) -> None:
    screen = terminal_sweep["screen"]
    assert isinstance(screen, list)
    text = "\n".join(screen)
    starts = [i for i, line in enumerate(screen) if "warning:" in line]
    # Both warnings: the reports that missed ASHA's milestones, and the missing checkpoint.
    assert len(starts) == 2, text
    assert all(screen[i].startswith("warning:") for i in starts), text
    flat = _flat(screen)
    assert flat.count("left no checkpoint") == 1, text
    # The real cause: the loop never saved a checkpoint through ctx (every_epochs is 1 already).
    assert "its trainable never saved one through `ctx`" in flat, text
    assert "`checkpoint.every_epochs` >= 1" not in flat and "set it to 1 or more" not in flat
    assert (
        "never at ASHA's milestone at iteration" in flat
        and "Report when `ctx.should_report(i)` is true" in flat
    )


def test_a_trial_s_output_is_in_its_folder_in_mlflow_and_in_sweep_logs(
    terminal_sweep: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    from sweeps.cli import main
    from sweeps.ray_backend.formats import ray_trial_files
    from sweeps.store.catalog import describe_sweep
    from sweeps.store.state import sweep_paths

    storage = terminal_sweep["storage"]
    assert isinstance(storage, Path)
    paths = sweep_paths(storage, "chatty")
    # A trial that ran to the end (ASHA may stop the others before their last lines).
    trial = next(
        t for t in describe_sweep(storage, "chatty", ray_trial_files).trials if t.state == "completed"
    )
    folder = paths.trials_directory / trial.trial_id
    stdout = (folder / "stdout.txt").read_text()
    assert stdout.startswith("chatty: training with learning rate") and "chatty: iteration 7 " in stdout
    assert "chatty: a warning on stderr" in (folder / "stderr.txt").read_text()

    assert main(["logs", "chatty", trial.trial_id, "--storage", str(storage), "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "stdout.txt" in out and "stderr.txt" in out
    # The last 2 lines of each stream, verbatim: the final report's line, and the stderr's end.
    lines = out.splitlines()
    assert lines[1:3] == stdout.splitlines()[-2:] and lines[-2:] == [
        "chatty: a warning on stderr",
        "chatty: the last report",
    ], out
    assert "chatty: training with learning rate" not in out  # only the last lines

    client = MlflowClient(paths.embedded_tracking_uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("chatty").experiment_id],
        f"tags.\"sweep.trial_id\" = '{trial.trial_id}'",
    )
    [run] = runs
    assert {a.path for a in client.list_artifacts(run.info.run_id, "output")} == {
        "output/stdout.txt",
        "output/stderr.txt",
    }


def test_sweep_logs_names_the_trials_when_the_trial_is_unknown(
    terminal_sweep: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    from sweeps.cli import main

    assert main(["logs", "chatty", "nosuch", "--storage", str(terminal_sweep["storage"])]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "has no trial `nosuch`" in err and "sweep status chatty" in err and "Traceback" not in err
