"""Free TCP ports for the processes tests start (Ray nodes, MLflow servers, `sweep ui`).

Binding to port 0 and closing, one port at a time, can hand out the same port twice: once
a probe socket is closed its port is free again, and the kernel may return it to the next
probe. A fresh-clone CI run failed that way, `ray start` refusing "dashboard_agent_http is
trying to use a port number ... used by other components". So every port of one call is
chosen while all of that call's probe sockets are still open (the kernel cannot repeat
one), and no port is handed out twice in this process (a port given to a node that has not
bound it yet is free to the kernel, but not to the next node of the same test).
"""

from __future__ import annotations

import os
import socket
import threading

HOST = "127.0.0.1"
#: Under pytest-xdist each worker process takes only the ports of its own class: the set of
#: ports handed out is per process, and two workers must never pick the same one. The class
#: is of port // 2, not of the port: Linux hands out even ports for bind(0) (odd ones are
#: for connect), so a worker of odd ports found none.
_WORKER_INDEX = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_WORKER_COUNT = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
#: Every port handed out in this process, never handed out again.
_HANDED_OUT: set[int] = set()
_LOCK = threading.Lock()
#: Probes before giving up; ports already handed out are skipped, not counted as found.
_MAX_PROBES = 10_000


def free_ports(count: int, host: str = HOST) -> list[int]:
    """``count`` distinct ports free now on ``host``, none handed out before in this process."""
    with _LOCK:
        held: list[socket.socket] = []
        ports: list[int] = []
        try:
            while len(ports) < count:
                if len(held) >= _MAX_PROBES:
                    raise RuntimeError(f"found {len(ports)} of {count} free ports after {_MAX_PROBES} probes")
                probe = socket.socket()
                held.append(probe)  # kept open, so the kernel cannot hand its port out again
                probe.bind((host, 0))
                port = int(probe.getsockname()[1])
                if port not in _HANDED_OUT and port // 2 % _WORKER_COUNT == _WORKER_INDEX:
                    ports.append(port)
            _HANDED_OUT.update(ports)
        finally:
            for probe in held:
                probe.close()
        return ports


def free_port(host: str = HOST) -> int:
    """One port, by the same rules as :func:`free_ports` (use that for several at once)."""
    return free_ports(1, host)[0]
