"""`sweep report` bad input: exit code 2 and one paragraph, no traceback (no Ray needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweeps.cli import main


def run_report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["report", *argv])
    return code, capsys.readouterr().err


def test_an_unknown_sweep_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_report(capsys, "nosuch", "--storage", str(tmp_path))
    assert code == 2 and "no sweep named `nosuch`" in err and "Traceback" not in err


def test_a_sweep_without_an_mlflow_store_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A sweep folder whose tracking was disabled: sweep.json exists, mlflow.db does not.
    folder = tmp_path / "quiet"
    folder.mkdir()
    spec = {
        "name": "quiet",
        "trainable": "digits_mlp",
        "metric": "val_accuracy",
        "mode": "max",
        "num_samples": 2,
        "search_space": {"batch_size": 64, "epochs": 1, "learning_rate": 0.01},
        "tracking": {"enabled": False},
    }
    (folder / "sweep.json").write_text(
        json.dumps({"name": "quiet", "spec": spec, "spec_path": str(tmp_path / "s.yaml")})
    )
    code, err = run_report(capsys, "quiet", "--storage", str(tmp_path))
    assert code == 2 and "no MLflow store at" in err and "Traceback" not in err
    assert not (tmp_path / "mlflow.db").exists()


def test_an_unreachable_tracking_server_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_report(capsys, "gone", "--storage", str(tmp_path), "--tracking-uri", "http://127.0.0.1:9")
    assert code == 2 and "cannot reach the MLflow tracking server" in err and "Traceback" not in err
