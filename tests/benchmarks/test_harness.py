"""Smoke tests: the benchmark harness still runs a tiny configuration end to end.

Benchmarks are never timed in tests; these only check that `make bench` cannot rot: the
CLI, a scenario (B3 with one small batch size and one repetition), the table, a contender
process (B1's Optuna, five trials) and the bookkeeping that turns results into figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import __main__ as bench_cli
from benchmarks import b1_overhead, b3_loop, b4_tracking
from benchmarks.harness import Scenario, median, python_module, render_table, run_process


def test_b3_runs_a_tiny_configuration_and_renders_a_table(tmp_path: Path) -> None:
    scenario = b3_loop.run(1, tmp_path, batch_sizes=(64,), samples=1500)
    row = scenario.row("samples/CPU-s, batch size 64")
    assert len(row.values[b3_loop.OURS]) == 1 and row.values[b3_loop.OURS][0] > 0
    assert row.values[b3_loop.HAND][0] > 0
    assert row.target == "≥ 90 %" and row.met in (True, False)
    table = render_table([scenario])
    assert "| B3 | samples/CPU-s, batch size 64 |" in table
    assert "of hand-written" in table


def test_cli_runs_selected_scenarios_and_writes_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(b3_loop, "BATCH_SIZES", (256,))
    monkeypatch.setattr(b3_loop, "SAMPLES", 1500)
    out = tmp_path / "bench.json"
    assert bench_cli.main(["b3", "--reps", "1", "--json", str(out), "--workdir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "Machine:" in printed and "| B3 | samples/CPU-s, batch size 256 |" in printed
    data = json.loads(out.read_text())
    assert data["scenarios"][0]["id"] == "B3" and data["reps"] == 1


@pytest.mark.parametrize("argv", [["B9"], ["B1", "--reps", "0"]])
def test_cli_refuses_unknown_scenarios_and_bad_reps(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench_cli.main(argv)
    assert exc.value.code == 2


def test_b1_optuna_contender_process_runs(tmp_path: Path) -> None:
    out = tmp_path / "optuna.json"
    process = run_process(
        python_module(
            "benchmarks.b1_overhead",
            "optuna",
            "--trials",
            "5",
            "--out",
            str(out),
            "--storage",
            str(tmp_path / "s"),
        )
    )
    assert json.loads(out.read_text())["up_s"] > 0
    assert process.peak_rss_mb > 0


def test_b1_project_spec_is_a_valid_sweep(tmp_path: Path) -> None:
    import yaml

    from sweeps.plan.planner import plan_spec
    from sweeps.spec.loading import load_spec

    path = tmp_path / "b1.yaml"
    path.write_text(yaml.safe_dump(b1_overhead.project_spec(7, tmp_path)))
    _, plan = plan_spec(load_spec(path))
    assert plan.num_samples == 7 and plan.dataset_size == 10


def test_median_counts_never_reached_as_infinite() -> None:
    assert median([1.0, None, 3.0]) == 3.0
    assert median([None, None, 2.0]) is None
    assert median([]) is None


def test_b4_hook_turns_returned_figures_into_rows() -> None:
    scenario = b4_tracking.to_scenario(
        {"tracking off": 0.0, "sweeps tracking": 4.0, "Ray MLflowLoggerCallback": 90.0}
    )
    row = scenario.row("added wall %")
    assert row.median("sweeps tracking") == 4.0 and row.met is True
    assert isinstance(b4_tracking.to_scenario(None), Scenario)


def test_b6_by_hand_contenders_shard_each_global_batch_as_ctx_shard_does() -> None:
    """B6 compares like with like only if plain torch takes the same share per rank as sweeps."""
    import torch

    from benchmarks.b6_distributed import BATCH, contiguous_share
    from sweeps.iterations import TrialShape
    from sweeps.training.context import LocalContext

    batch = torch.randperm(10_000)[:BATCH]
    for rank in (0, 1):
        ctx = LocalContext(TrialShape(10_000, BATCH, 1), metric="m", world_size=2, rank=rank)
        assert torch.equal(contiguous_share(batch, rank, 2), ctx.shard(batch))


def test_b6_runs_its_by_hand_ddp_contender_and_times_the_all_reduce(tmp_path: Path) -> None:
    from benchmarks.b6_distributed import BATCH, EPOCHS, N_SAMPLES
    from benchmarks.harness import python_module, run_process

    out = tmp_path / "t.json"
    run_process(python_module("benchmarks.b6_distributed", "by-hand", "--workers", "2", "--out", str(out)))
    timings = json.loads(out.read_text())
    assert timings["iterations"] == EPOCHS * (N_SAMPLES // BATCH)
    assert 0 < timings["allreduce_s"] < timings["last_iteration"] - timings["first_iteration"]


def test_the_gpu_check_imports_and_says_it_needs_a_gpu_here(tmp_path: Path) -> None:
    """CI has no GPU: the script must still load (its checks are ready) and exit 2 saying so."""
    import subprocess
    import sys

    from benchmarks.harness import REPO

    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check_distributed"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout.startswith("0 GPU(s)")
