"""The shared free-port helper: no port twice, within one call or across calls (issue 12, 8)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.ports import free_port, free_ports


def test_the_ports_of_one_call_are_distinct_and_free() -> None:
    ports = free_ports(64)
    assert len(set(ports)) == 64
    for port in ports:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # raises if it were taken


def test_no_port_is_handed_out_twice_in_one_process() -> None:
    # Closing each probe before the next, as the old per-test helpers did, repeated a port
    # about once in 17 picks over 2,000 here; 1,000 picks repeat one almost surely.
    ports = [free_port() for _ in range(1000)] + free_ports(200)
    assert len(set(ports)) == len(ports)


def test_every_free_port_helper_of_the_suite_is_the_shared_one() -> None:
    from tests.cluster import local_cluster
    from tests.tracking import conftest as tracking_conftest

    assert local_cluster.free_port is free_port and local_cluster.free_ports is free_ports
    assert tracking_conftest.free_port is free_port


@pytest.mark.parametrize(("worker", "workers"), [("gw0", 2), ("gw1", 2), ("gw0", 3), ("gw1", 3), ("gw2", 3)])
def test_parallel_test_workers_never_share_a_port(worker: str, workers: int) -> None:
    # `make test` runs pytest-xdist workers, each a process with its own record of the ports
    # it handed out; each takes only its own class of ports, so two never pick the same one,
    # and each finds ports (with a class of `port % 2`, the second worker found none).
    script = "from tests.ports import free_ports; print(*free_ports(300))"
    env = dict(
        os.environ, PYTEST_XDIST_WORKER=worker, PYTEST_XDIST_WORKER_COUNT=str(workers), PYTHONPATH=str(REPO)
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    ports = [int(port) for port in done.stdout.split()]
    assert len(set(ports)) == 300
    assert {port // 2 % workers for port in ports} == {int(worker[2:])}
