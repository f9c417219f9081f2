"""`resources.workers`: the spec field, its checks before launch, and what `sweep plan` shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sweeps.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", ["plan", "run"])
def test_zero_workers_is_exit_2_naming_the_field(
    write_spec: Callable[..., Path], capsys, command: str
) -> None:
    code, _, err = run_cli(capsys, command, str(write_spec(resources={"cpu": 1, "workers": 0})))
    assert code == 2
    assert "resources.workers" in err and "greater than or equal to 1" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["plan", "run"])
def test_a_batch_size_the_workers_cannot_split_is_exit_2_naming_both(
    write_spec: Callable[..., Path], capsys, command: str
) -> None:
    spec = write_spec(resources={"cpu": 1, "workers": 3}, search_space__batch_size=64)
    code, _, err = run_cli(capsys, command, str(spec))
    assert code == 2
    assert "field `resources.workers`" in err and "is 3" in err and "allows 64" in err
    assert "multiples of 3" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["plan", "run"])
def test_fractional_gpus_for_a_distributed_trial_are_exit_2(
    write_spec: Callable[..., Path], capsys, command: str
) -> None:
    code, _, err = run_cli(capsys, command, str(write_spec(resources={"cpu": 1, "gpu": 0.5, "workers": 2})))
    assert code == 2
    assert "field `resources.gpu`" in err and "is 0.5 with `resources.workers: 2`" in err
    assert "NCCL" in err and "`gpu: 1`" in err and "Traceback" not in err


def test_whole_gpus_per_worker_and_fractional_gpus_for_one_worker_are_accepted(
    write_spec: Callable[..., Path],
) -> None:
    from sweeps.spec.loading import load_spec

    assert load_spec(write_spec(resources={"gpu": 2, "workers": 2}), []).spec.resources.gpu == 2
    assert load_spec(write_spec(resources={"gpu": 0.25, "workers": 1}), []).spec.resources.gpu == 0.25


def test_only_the_batch_sizes_workers_cannot_split_are_named(write_spec: Callable[..., Path], capsys) -> None:
    spec = write_spec(
        resources={"workers": 4},
        search_space__batch_size={"type": "categorical", "values": [32, 66, 128, 130]},
    )
    code, _, err = run_cli(capsys, "plan", str(spec))
    assert code == 2 and "allows 66, 130," in err


def test_plan_shows_workers_and_the_per_worker_batch(
    write_spec: Callable[..., Path], capsys, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at the terminal's width
    spec = write_spec(resources={"cpu": 1, "workers": 2})
    code, out, _ = run_cli(capsys, "plan", str(spec))
    assert code == 0
    assert "2 workers" in out and "per-worker batch" in out
    code, out, _ = run_cli(capsys, "plan", str(spec), "--json")
    plan = json.loads(out)
    assert plan["workers"] == 2
    # The iteration arithmetic is that of the global batch: N = 1,438, ceil(1438 / 64) = 23.
    assert [
        (r["batch_size"], r["per_worker_batch_size"], r["iterations_per_epoch"]) for r in plan["batch_sizes"]
    ] == [(64, 32, 23), (128, 64, 12)]


def test_a_single_worker_plan_has_no_per_worker_column(write_spec: Callable[..., Path], capsys) -> None:
    code, out, _ = run_cli(capsys, "plan", str(write_spec()))
    assert code == 0 and "per-worker batch" not in out and "workers" not in out
