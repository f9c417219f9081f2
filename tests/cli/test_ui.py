"""``sweep ui``: bad input ends with exit 2 and one paragraph (the happy path is driven in
a real browser by tests/tracking/test_browser.py)."""

from __future__ import annotations

import socket
from pathlib import Path

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
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert command[command.index("--default-artifact-root") + 1] == (tmp_path.resolve() / "mlartifacts").as_uri()
    assert command[command.index("--host") + 1] == "127.0.0.1"
