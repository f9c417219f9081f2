"""`sweep run` as a real `ray job submit` on a loopback head: `ray job logs` shows its progress.

A job's driver writes to a log file that the dashboard serves, never to a terminal, so
before plain progress lines `ray job logs` showed nothing until the sweep's summary. The
head here runs the dashboard (the job API lives there; the shared loopback cluster turns
it off), with token authentication as in tests/cluster/test_multinode.py. The test reads
`ray job logs` while the job is still RUNNING and needs an ended-trial line there.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.local_cluster import HEAD_PORT_FLAGS, VENV_BIN, LocalRayCluster, RayNode
from tests.conftest import small_spec
from tests.ports import free_ports

pytestmark = pytest.mark.slow

TRAINABLE = f"{Path(__file__).parents[1] / 'runner' / 'behaving_trainable.py'}:train"
TRIAL_LINE = re.compile(
    r"\d\d:\d\d:\d\d \+\d+s job: trial \w+ (completed|pruned) at iteration \d+ .*\| \d+/8 done"
)


class DashboardCluster(LocalRayCluster):
    """A loopback head that runs the dashboard, which serves the job API."""

    dashboard_port: int = 0

    def start_head(self, cpus: int, timeout: float = 120) -> RayNode:
        ports = dict(zip(HEAD_PORT_FLAGS, free_ports(len(HEAD_PORT_FLAGS)), strict=False))
        self.port, self.dashboard_port = ports["--port"], ports["--dashboard-port"]
        return self._start(
            "head",
            [
                "--head",
                f"--num-cpus={cpus}",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                *(f"{flag}={port}" for flag, port in ports.items()),
            ],
            timeout,
        )


@pytest.fixture
def cluster() -> Iterator[DashboardCluster]:
    cluster = DashboardCluster()
    try:
        cluster.start_head(cpus=2)
        yield cluster
    finally:
        cluster.shutdown()


def ray_job(cluster: DashboardCluster, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command, rest = args[0], args[1:]  # `--address` before any `--` that starts the entrypoint
    return subprocess.run(
        [
            str(VENV_BIN / "ray"),
            "job",
            command,
            "--address",
            f"http://127.0.0.1:{cluster.dashboard_port}",
            *rest,
        ],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_ray_job_logs_show_progress_lines_while_the_sweep_runs(
    cluster: DashboardCluster, tmp_path: Path
) -> None:
    spec = small_spec(
        name="job",
        storage=str(tmp_path / "results"),
        trainable=TRAINABLE,
        num_samples=8,
        seed=3,
        trainable_args={"iteration_seconds": 0.2},  # 4-6 s a trial: the job runs for a while
        search_space={
            "batch_size": 100,
            "epochs": {"type": "int", "low": 2, "high": 3},
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        scheduler={"type": "none"},
    )
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    submitted = ray_job(
        cluster,
        "submit",
        "--no-wait",
        "--submission-id",
        "sweep-job",
        "--",
        str(VENV_BIN / "sweep"),
        "run",
        str(path),
        "--address",
        "auto",
        timeout=120,
    )
    assert submitted.returncode == 0, submitted.stdout[-2000:] + submitted.stderr[-2000:]

    seen_running, status = False, ""
    deadline = time.monotonic() + 300
    while not re.search(r"succeeded|failed|stopped", status.lower()):
        assert time.monotonic() < deadline, status
        logs = ray_job(cluster, "logs", "sweep-job").stdout
        status = ray_job(cluster, "status", "sweep-job").stdout
        if TRIAL_LINE.search(logs) and "Best trial" not in logs and "running" in status.lower():
            seen_running = True  # progress visible while the sweep is still going (polled after the logs)
    logs = ray_job(cluster, "logs", "sweep-job").stdout
    assert "succeeded" in status.lower(), status + logs[-3000:]
    assert seen_running, logs[-3000:]
    assert len(TRIAL_LINE.findall(logs)) == 8, logs[-3000:]
    assert "Best trial" in logs
