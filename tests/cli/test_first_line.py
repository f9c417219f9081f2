"""`sweep run` speaks before its heavy imports: the first line precedes torch, Ray and MLflow.

A real `sweep run` process, run with ``python -X importtime`` and its stderr in the same
pipe as its stdout: Python writes one line per module as it is imported, so the pipe
holds, in order, every import and the sweep's first line. The process is ended (its own
process group) as soon as the first line arrives, before Ray starts.

No timing is asserted (the 1 s target is measured by ``python -m benchmarks.first_line``);
the order of events is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO, small_spec

HEAVY = ("torch", "ray", "mlflow", "optuna", "numpy")


def test_the_first_line_comes_before_torch_ray_mlflow_and_numpy_are_imported(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(small_spec(storage=str(tmp_path / "results")), sort_keys=False))
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
    driver = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "sweeps", "run", str(spec)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen: list[str] = []
    try:
        assert driver.stdout is not None
        for line in driver.stdout:
            seen.append(line.rstrip("\n"))
            if line.startswith("Sweep tiny: starting 6 trials on local Ray ("):
                break
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # its own group: the driver, before it started Ray
        driver.wait()
    assert seen and seen[-1].startswith("Sweep tiny:"), seen[-20:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in seen if line.startswith("import time:")]
    assert "sweeps.spec.loading" in imported  # the spec was read and checked before it
    heavy = [name for name in imported if name.split(".")[0] in HEAVY]
    assert heavy == [], heavy
