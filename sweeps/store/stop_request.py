"""A request to stop a sweep gracefully: ``<storage>/<name>/stop-requested``.

``sweep stop NAME`` writes it from any host that shares the storage; the driver polls it
(:class:`~sweeps.runner.stopping.GracefulStop`) and so does every running trial, which then
saves a checkpoint at its next iteration. A resumed sweep removes it first.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sweeps.store.state import SweepPaths


def write_stop_request(path: Path, reason: str) -> None:
    path.write_text(json.dumps({"reason": reason, "at": time.time(), "pid": os.getpid()}))


def request_stop(paths: SweepPaths, reason: str) -> None:
    """Ask the sweep's driver (any host sharing the storage) to stop gracefully."""
    write_stop_request(paths.stop_request_file, reason)


def clear_stop_request(paths: SweepPaths) -> None:
    paths.stop_request_file.unlink(missing_ok=True)


def read_stop_reason(path: Path) -> str:
    """Why the stop was requested ("sweep stop", "Ctrl-C"...), as its writer said."""
    try:
        return str(json.loads(path.read_text()).get("reason") or "a stop request")
    except (OSError, ValueError, AttributeError):
        return "a stop request"
