"""``python -m benchmarks.first_line [SPEC]``: seconds from exec to the first byte of ``sweep run``.

Measured through a pipe (what a log sees) and through a pseudo-terminal (what a user
sees), each from just before the process is created to the first byte it writes to
stdout. The sweep is stopped as soon as that byte arrives (its whole process group, which
this script created), so the measurement costs no more than the start itself.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = Path(__file__).resolve().parents[1] / "sweeps" / "examples" / "digits_mlp.yaml"


def first_byte_seconds(spec: Path, terminal: bool, storage: str) -> tuple[float, bytes]:
    command = [sys.executable, "-m", "sweeps", "run", str(spec), "--storage", storage, "--overwrite"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    reader, writer = pty.openpty() if terminal else os.pipe()
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=writer, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    os.close(writer)
    try:
        select.select([reader], [], [], 120)
        seconds = time.perf_counter() - started
        line = os.read(reader, 4096).split(b"\n")[0]
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the group this script started, and nothing else
        process.wait()
        os.close(reader)
    return seconds, line


def main() -> None:
    spec = Path(sys.argv[1]) if len(sys.argv) > 1 else SPEC
    with tempfile.TemporaryDirectory() as storage:
        for terminal in (False, True):
            seconds, line = first_byte_seconds(spec, terminal, storage)
            print(
                f"{'terminal' if terminal else 'pipe':8} {seconds:5.2f} s  "
                f"{line.decode(errors='replace')[:90]}"
            )


if __name__ == "__main__":
    main()
