"""Ctrl-C, SIGTERM and kill -9 while `sweep run` starts, and Ctrl-C once its summary is out.

Ray starts on a thread while the driver loads the trainable and claims the sweep's folder
(sweeps/runner/runner.py), so these signals land in the middle of the start: the signal
is sent as soon as the folder is claimed (its sweep.json exists), before any trial ran.
Real processes and real signals throughout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import REPO, small_spec

pytestmark = pytest.mark.slow

ENV = dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")


def write_spec(tmp_path: Path) -> Path:
    spec = small_spec(
        name="early",
        num_samples=2,
        storage=str(tmp_path / "results"),
        search_space={"batch_size": 128, "epochs": 1, "learning_rate": 0.01},
        scheduler={"type": "none"},
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def sweep(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps", *args],
        cwd=tmp_path,
        env=ENV,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def signal_once_claimed(tmp_path: Path, driver: subprocess.Popen[str], signum: int) -> set[psutil.Process]:
    """Send ``signum`` as soon as the folder is claimed; return the Ray processes seen by then."""
    claimed = tmp_path / "results" / "early" / "sweep.json"
    deadline = time.monotonic() + 120
    while not claimed.exists():
        assert driver.poll() is None, driver.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the folder was never claimed"
        time.sleep(0.01)
    assert not (tmp_path / "results" / "early" / "results.jsonl").exists(), "a trial already reported"
    tree = set(psutil.Process(driver.pid).children(recursive=True))
    driver.send_signal(signum)
    return tree


def check_no_ray_left(driver: subprocess.Popen[str], tree: set[psutil.Process]) -> None:
    try:
        _, alive = psutil.wait_procs(list(tree), timeout=5)
        assert alive == [], f"outlived the driver: {[(p.pid, p.name()) for p in alive]}"
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_to_the_end(tmp_path: Path, *extra: str) -> None:
    again = subprocess.run(
        [sys.executable, "-m", "sweeps", "run", "spec.yaml", "--json", *extra],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert '"completed": 2' in again.stdout


@pytest.mark.parametrize(
    ("signum", "code", "name"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_a_signal_while_starting_stops_at_once_and_the_same_command_starts_again(
    tmp_path: Path, signum: int, code: int, name: str
) -> None:
    write_spec(tmp_path)
    driver = sweep(tmp_path, "run", "spec.yaml", "--json")
    tree = signal_once_claimed(tmp_path, driver, signum)
    _, err = driver.communicate(timeout=120)
    check_no_ray_left(driver, tree)
    assert driver.returncode == code, err[-3000:]
    assert "Traceback" not in err and "SIGTERM received" not in err, err[-3000:]
    assert (
        f"Sweep `early` stopped while starting ({name}). Nothing ran; the same command starts it again."
        in " ".join(err.split())
    )
    assert not (tmp_path / "results" / "early").exists(), "the folder of a sweep that never ran was left"
    run_to_the_end(tmp_path)


def test_a_sweep_killed_while_starting_is_refused_by_resume_and_restarts_with_overwrite(
    tmp_path: Path,
) -> None:
    write_spec(tmp_path)
    driver = sweep(tmp_path, "run", "spec.yaml", "--json")
    tree = signal_once_claimed(tmp_path, driver, signal.SIGKILL)
    driver.communicate(timeout=60)
    check_no_ray_left(
        driver, {p for p in tree if p.name() not in {"ray::DashboardAgent", "ray::RuntimeEnvAgent"}}
    )
    for (
        process
    ) in tree:  # the two agents linger about 60 s after any kill -9 of a driver (test_process_groups.py)
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    resumed = subprocess.run(
        [sys.executable, "-m", "sweeps", "resume", "early", "--storage", "results"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 2, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    assert "--overwrite" in resumed.stderr, resumed.stderr
    run_to_the_end(tmp_path, "--overwrite")


def test_ctrl_c_once_the_summary_is_out_changes_nothing(tmp_path: Path) -> None:
    write_spec(tmp_path)
    driver = sweep(tmp_path, "run", "spec.yaml", "--json")
    assert driver.stdout is not None
    line = driver.stdout.readline()  # the summary: printed once the record is complete
    for _ in range(3):
        try:
            driver.send_signal(signal.SIGINT)
        except ProcessLookupError:
            break
    _, err = driver.communicate(timeout=60)
    assert '"completed": 2' in line, err[-3000:]
    assert driver.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "Aborted" not in err, err[-3000:]
