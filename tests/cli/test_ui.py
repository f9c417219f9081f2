"""``sweep ui``: bad input ends with exit 2 and one paragraph (the happy path is driven in
a real browser by tests/tracking/test_browser.py)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from sweeps.cli import main
from sweeps.cli.ui import ui_command_line


def test_a_folder_without_a_store_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ui", "--storage", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no MLflow store" in err and str(tmp_path / "mlflow.db") in err and "Traceback" not in err


def test_a_busy_port_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mlflow.db").touch()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--storage", str(tmp_path), "--port", str(port)]) == 2
    assert f"127.0.0.1:{port} is in use" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_an_impossible_port_is_refused(tmp_path: Path, port: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mlflow.db").touch()
    assert main(["ui", "--storage", str(tmp_path), "--port", port]) == 2
    assert "between 1 and 65535" in capsys.readouterr().err


def test_the_ui_serves_the_embedded_store_on_loopback(tmp_path: Path) -> None:
    command = ui_command_line(tmp_path, 5123)
    assert (
        command[command.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    )
    assert (
        command[command.index("--default-artifact-root") + 1] == (tmp_path.resolve() / "mlartifacts").as_uri()
    )
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--workers") + 1] == "1"


# -- the UI's whole process group ends with `sweep ui` (issue 12, 4) --------------------------


@pytest.fixture(scope="module")
def ui_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow store, created once (its schema migrations take seconds)."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("ui-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import mlflow, sys; mlflow.MlflowClient(sys.argv[1]).search_experiments()",
            uri,
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return folder


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _live_members(pgid: int) -> list[Any]:
    import psutil

    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def _start_ui(store: Path, sigint_ignored: bool = False) -> tuple[Any, int, int]:
    """`sweep ui` through the installed script; returns it, its port and the UI's process group.

    ``sigint_ignored`` starts it as a script's background job starts (`sweep ui &`): with
    SIGINT ignored, which Python keeps unless told otherwise.
    """
    import selectors
    import shutil
    import subprocess
    import sys

    import psutil

    from tests.ports import free_port

    port = free_port()
    script = shutil.which("sweep", path=str(Path(sys.executable).parent))
    assert script is not None
    # Its own session, so that this test can clean up whatever a failure leaves.
    command = [script, "ui", "--storage", str(store), "--port", str(port)]
    if sigint_ignored:  # the shell's `trap '' INT` is inherited through its exec
        command = ["sh", "-c", 'trap "" INT; exec "$0" "$@"', *command]
    ui = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    selector = selectors.DefaultSelector()
    selector.register(ui.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 240
    while not selector.select(timeout=1):
        assert ui.poll() is None and time.monotonic() < deadline, (
            ui.stderr.read() if ui.poll() is not None else "no answer"
        )
    line = ui.stdout.readline()
    assert f"http://127.0.0.1:{port}" in line, line
    child = psutil.Process(ui.pid).children()[0]
    return ui, port, os.getpgid(child.pid)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "sigint_ignored"),
    [
        (signal.SIGTERM, 143, False),
        (signal.SIGINT, 130, False),
        (signal.SIGINT, 130, True),
        (signal.SIGHUP, 129, False),
        (signal.SIGKILL, -9, False),
    ],
    ids=["TERM", "INT", "INT-started-ignoring-it", "HUP", "KILL-parent"],
)
def test_the_ui_and_every_process_it_started_end_with_sweep_ui(
    ui_store: Path, signum: int, code: int, sigint_ignored: bool
) -> None:
    ui, port, group = _start_ui(ui_store, sigint_ignored)
    try:
        assert _answers(port)
        members = [" ".join(p.cmdline()) for p in _live_members(group)]
        assert len(members) >= 3, f"the guard, mlflow ui and its uvicorn server: {members}"
        # One viewer: one uvicorn worker and no job runner (sweeps/cli/ui.py says why).
        assert len(members) <= 4 and not [m for m in members if "huey" in m or "job" in m], members
        ui.send_signal(signum)
        assert ui.wait(timeout=60) == code, ui.stderr.read()[-2000:]
        deadline = time.monotonic() + 30  # the guard gives the group 5 s before SIGKILL
        while (_live_members(group) or _answers(port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [" ".join(p.cmdline()[:4]) for p in _live_members(group)]
        assert not left, f"left running after {signal.Signals(signum).name}: {left}"
        assert not _answers(port)
        assert "Traceback" not in ui.stderr.read()
    finally:
        for proc in _live_members(group) + _live_members(ui.pid):
            proc.kill()
        if ui.poll() is None:
            ui.kill()
