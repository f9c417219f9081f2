"""The embedded Ray's processes live in groups of their own, yet still end with the driver.

A real driver process starts the embedded Ray as ``sweep run`` does; its Ray processes
(GCS, raylet, helpers and the workers the raylet prestarts) are read with psutil. The
end-to-end case, a SIGTERM to the whole group of a running ``sweep run``, is in
``tests/runner/test_sigterm.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import psutil
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

AGENTS = {"ray::DashboardAgent", "ray::RuntimeEnvAgent"}
DRIVER = "from sweeps.ray_backend.backend import start_ray; start_ray(None); print('up', flush=True); input()"


def test_ray_processes_leave_the_drivers_group_and_die_with_the_driver_on_sigkill() -> None:
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0"),
    )
    ray_processes: list[psutil.Process] = []
    try:
        assert driver.stdout is not None and driver.stdout.readline().strip() == "up"
        ray_processes = psutil.Process(driver.pid).children(recursive=True)
        names = {p.name() for p in ray_processes}
        assert {"gcs_server", "raylet"} <= names, names
        in_drivers_group = [p.name() for p in ray_processes if os.getpgid(p.pid) == driver.pid]
        assert in_drivers_group == [], f"still in the driver's process group: {in_drivers_group}"
        # SIGKILL to the group, as `kill -9 -PGID`: the Ray processes, out of the group, must
        # still go with the driver (the kernel's parent-death signal), leaving no orphans.
        # Ray's two agents are left out: they see the raylet die at once, then spend about
        # 60 s failing to report it to the dead GCS before they exit, as after any kill -9
        # of a Ray driver.
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=10)
        core = [p for p in ray_processes if p.name() not in AGENTS]
        _, alive = psutil.wait_procs(core, timeout=15)
        assert alive == [], f"outlived the driver: {[(p.pid, p.name()) for p in alive]}"
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        for process in ray_processes:  # none left behind for the next tests, even on failure
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
