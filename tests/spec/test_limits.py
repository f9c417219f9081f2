"""`limits`: durations, bad input through the CLI (exit 2, the field named), and the plan's coverage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sweeps.cli import main
from sweeps.spec.limits import parse_duration
from tests.conftest import small_spec


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("2h", 7200),
        ("90m", 5400),
        ("1h30m", 5400),
        ("45s", 45),
        ("1d", 86400),
        ("0.5h", 1800),
        (30, 30),
        (2.5, 2.5),
    ],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


def write(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(small_spec(**changes), sort_keys=False))
    return path


@pytest.mark.parametrize(
    "limits, field",
    [
        ({"max_time": "2 hours"}, "limits.max_time"),
        ({"max_time": 0}, "limits.max_time"),
        ({"max_iterations": 0}, "limits.max_iterations"),
        ({"max_samples": -5}, "limits.max_samples"),
        ({"on_exhausted": "pause"}, "limits.on_exhausted"),
        ({"max_trials": 5}, "`max_trials` in limits. Did you mean `max_time`?"),
    ],
)
def test_a_bad_limit_is_exit_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], limits: dict[str, object], field: str
) -> None:
    assert main(["plan", str(write(tmp_path, limits=limits))]) == 2
    error = capsys.readouterr().err
    assert field in error and "Traceback" not in error


def test_the_plan_says_how_many_trials_a_limit_covers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, num_samples=40, limits={"max_iterations": 500, "max_samples": 10**9})
    assert main(["plan", str(path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    per_trial = plan["expected_iterations"] / 40
    assert plan["limits"]["max_iterations"] == {
        "limit": 500.0,
        "expected_trials": pytest.approx(500 / per_trial),
    }
    assert plan["limits"]["max_samples"]["expected_trials"] == 40  # never more than num_samples
    assert main(["plan", str(path)]) == 0
    assert "limits.max_iterations = 500 iterations: enough for about" in capsys.readouterr().out
