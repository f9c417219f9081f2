"""``sweep ui``: open the MLflow UI on the embedded store of a storage folder.

Sweeps that set no ``tracking.uri`` log into ``<storage>/mlflow.db`` (artifacts in
``<storage>/mlartifacts``); no server runs while they do. This command starts
``mlflow ui`` on 127.0.0.1 against that store, prints the address once it answers, and
runs until Ctrl-C. MLflow's own log (startup lines, one line per request) goes to
``<storage>/mlflow-ui.log`` rather than the terminal. The UI and every process it starts
end with this command, on SIGTERM (exit 143), SIGINT (130), SIGHUP (129) or when it is
killed (:mod:`sweeps.cli.process_group`).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import typer

from sweeps.cli.app import DEFAULT_STORAGE, app
from sweeps.cli.process_group import start_guarded, stop_guarded
from sweeps.errors import SweepError
from sweeps.store.state import sweep_paths

HOST = "127.0.0.1"
#: `mlflow ui`'s defaults are for a shared server: 4 uvicorn workers, and a job runner with
#: its own huey consumers (for MLflow's GenAI jobs, which sweeps never submits). On a
#: 2-core laptop they made 15 processes and tripled the time to the first answer (27 s
#: against 9 s, measured while busy); one viewer needs one worker and no job runner.
UI_WORKERS = 1
UI_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
#: Seconds to wait for the UI to answer before declaring that it did not start.
STARTUP_TIMEOUT = 120.0


@app.command("ui")
def ui_command(
    storage: str | None = typer.Option(None, "--storage", help="The sweeps' storage folder."),
    port: int = typer.Option(5000, "--port", help="Port on 127.0.0.1 (0 = any free port)."),
) -> None:
    """Open the MLflow UI on the sweeps of a storage folder (Ctrl-C stops it)."""
    folder = storage or DEFAULT_STORAGE
    paths = sweep_paths(folder, "_")
    database = paths.storage / "mlflow.db"
    if not database.is_file():
        raise SweepError(
            f"--storage {folder}: there is no MLflow store at {database}. Run a sweep with this "
            "storage first (`sweep run SPEC.yaml --storage ...`), or pass the storage folder "
            "your sweeps used. Sweeps that set `tracking.uri` log to that server instead: "
            "open its address in a browser."
        )
    port = _free_port() if port == 0 else _check_port(port)
    log_path = paths.storage / "mlflow-ui.log"
    address = f"http://{HOST}:{port}"
    # `mlflow ui` and the processes it starts form one group that ends with this command,
    # however it ends (sweeps/cli/process_group.py): SIGTERM, SIGINT, SIGHUP, or SIGKILL.
    # SIGINT gets a handler too: a process started with SIGINT ignored (`sweep ui &` in a
    # script, or under a CI runner that ignores it) keeps that disposition, and Python then
    # never raises KeyboardInterrupt, so `kill -INT` would leave the UI running.
    stop_signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {signum: signal.signal(signum, _stop_on_signal) for signum in stop_signals}
    guard = None
    try:
        with open(log_path, "ab") as log:
            guard = start_guarded(ui_command_line(paths.storage, port), log, UI_ENVIRONMENT)
        _wait_until_answering(guard, address, log_path)
        print(f"MLflow UI for {paths.storage}: {address}  (Ctrl-C stops it)", flush=True)
        guard.wait()
    except _Stopped as stopped:
        raise typer.Exit(128 + stopped.signum) from None
    finally:
        if guard is not None:
            stop_guarded(guard)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_on_signal(signum: int, frame: object) -> None:
    # Python's default for SIGTERM and SIGHUP ends the process at once, without `finally`;
    # its SIGINT default may be no handler at all (see ui_command).
    raise _Stopped(signum)


def ui_command_line(storage: Path, port: int) -> list[str]:
    """The ``mlflow ui`` command for the embedded store under ``storage``."""
    paths = sweep_paths(storage, "_")
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        paths.embedded_tracking_uri,
        "--default-artifact-root",
        paths.embedded_artifact_root,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(UI_WORKERS),
    ]


def _wait_until_answering(process: subprocess.Popen[bytes], address: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise SweepError(
                f"`mlflow ui` exited with code {process.returncode} before answering at {address}. "
                f"The end of its log ({log_path}): " + " | ".join(tail)
            )
        try:
            with urllib.request.urlopen(f"{address}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SweepError(
        f"`mlflow ui` did not answer at {address} within {STARTUP_TIMEOUT:.0f} s; see its log {log_path}."
    )


def _check_port(port: int) -> int:
    if not 0 < port < 65536:
        raise SweepError(f"--port is {port}, but must be between 1 and 65535 (or 0 for any free port).")
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            raise SweepError(
                f"--port is {port}, but {HOST}:{port} is in use (another MLflow UI?). Choose "
                "another port with `--port`, or `--port 0` for any free one."
            ) from None
    return port


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])
