"""The process-tree CPU sampler behind B0's and B2R's CPU accounting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.process_cpu import ProcessTreeSampler, TreeUsage, classify, cpu_accounting

SITE = "/venv/lib/python3.11/site-packages/ray"


@pytest.mark.parametrize(
    ("cmdline", "kind"),
    [
        ([f"{SITE}/core/src/ray/gcs/gcs_server", "--log_dir=/tmp/ray"], "GCS"),
        # The raylet's arguments name the agents' scripts: the executable decides.
        (
            [
                f"{SITE}/core/src/ray/raylet/raylet",
                f"--dashboard_agent_command=python {SITE}/dashboard/agent.py",
            ],
            "raylet",
        ),
        (["python3", "-u", f"{SITE}/autoscaler/_private/monitor.py"], "autoscaler monitor"),
        (["python3", "-u", f"{SITE}/_private/log_monitor.py"], "log monitor"),
        (["python3", f"{SITE}/dashboard/dashboard.py", "--modules-to-load=UsageStatsHead"], "dashboard"),
        (["ray::DashboardAgent", ""], "dashboard agent"),
        (["ray::RuntimeEnvAgent", ""], "runtime-env agent"),
        (["ray::ImplicitFunc.train", ""], "workers"),
        (["ray::IDLE", ""], "workers"),
        # A worker before it retitles itself names the raylet among its arguments.
        (["python", f"{SITE}/_private/workers/default_worker.py", "--raylet-name=/tmp/raylet"], "workers"),
        (["python", "-m", "benchmarks.b2_reporting", "optuna"], "other"),
    ],
)
def test_each_process_is_classed_by_its_command_line(cmdline: list[str], kind: str) -> None:
    assert classify(123, driver=1, cmdline=cmdline) == kind


def test_the_driver_is_classed_by_pid() -> None:
    assert classify(7, driver=7, cmdline=["python", "-m", "sweeps", "run"]) == "driver"


def test_a_busy_child_is_counted_and_the_accounting_adds_up() -> None:
    # It burns 0.6 CPU-s, then idles so that a sample sees its final CPU time however busy the machine.
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ntime.sleep(1.0)"
    child = subprocess.Popen([sys.executable, "-c", burn])
    sampler = ProcessTreeSampler([child.pid], interval=0.05).start()
    child.wait()
    usage = sampler.stop()
    assert 0.55 <= usage.by_class["other"] <= 1.0, usage
    shares = cpu_accounting(usage, wall_s=2.0, trial_thread_s=0.4, cores=2)
    assert shares["trials' threads"] == 0.4
    assert shares["workers' other threads"] == pytest.approx(usage.by_class["other"] - 0.4)
    assert sum(v for k, v in shares.items() if k != "capacity") == pytest.approx(4.0)


def test_daemons_are_everything_but_the_driver_and_the_workers() -> None:
    usage = TreeUsage({"driver": 1.0, "workers": 3.0, "GCS": 0.5, "raylet": 0.25, "other": 0.0})
    assert usage.daemons() == 0.75
    shares = cpu_accounting(usage, wall_s=10.0, trial_thread_s=2.5, cores=2)
    assert shares == {
        "trials' threads": 2.5,
        "driver": 1.0,
        "workers' other threads": 0.5,
        "Ray's daemons": 0.75,
        "idle": 15.25,
        "capacity": 20.0,
    }
