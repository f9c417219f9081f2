"""`sweep check SPEC`: one trial's trainable in-process, before a sweep (issue 16, part 4).

Every failure is exit 2 with one paragraph naming the trainable, the config and the fix;
a trainable that keeps the contract is exit 0 with its rate, the projected time of the
sweep's budgets, its peak memory, its reports against the milestones and its N.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sweeps.cli import USAGE_ERROR_EXIT, main
from sweeps.plan.planner import plan_spec
from sweeps.spec import load_spec
from sweeps.store.space import expected_checkpoint_bytes, measured_checkpoint_size
from tests.conftest import EXAMPLES, REPO

BEHAVING = f"{REPO / 'tests' / 'runner' / 'behaving_trainable.py'}:train"  # torch-free, N = 1,000


def check(capsys: pytest.CaptureFixture[str], spec: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["check", str(spec), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def behaving_spec(write_spec: Callable[..., Path], **args: Any) -> Path:
    # bs 64 of N = 1,000: 16 iterations per epoch; 1 epoch first; ASHA's first milestone at 10.
    return write_spec(trainable=BEHAVING, trainable_args=args)


def test_the_digits_example_is_checked_in_process_up_to_its_first_milestone(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)  # the example's storage, ./sweep_results, where the measurement is kept
    spec = EXAMPLES / "digits_mlp.yaml"
    code, out, err = check(capsys, spec, "--json")
    assert code == 0, err
    result = json.loads(out)
    # The first config: batch size 16 (its first choice), 1 epoch (its low): 90 iterations.
    assert result["config"]["batch_size"] == 16 and result["config"]["epochs"] == 1
    assert result["total_iterations"] == 90
    assert result["iterations_run"] == 20 == result["milestone_iterations"][0]  # grace_period 20
    assert result["reported_iterations"] == [20] and result["missed_milestones"] == []
    assert result["declared_dataset_size"] == result["seen_dataset_size"] == 1438
    assert result["peak_memory_bytes"] > 0
    _, plan = plan_spec(load_spec(spec))
    rate = result["steady_iterations_per_second"]
    assert rate > 0 and 0 < result["setup_seconds"] < result["seconds"]
    assert result["projected_seconds"]["worst_case"] == pytest.approx(plan.worst_case_iterations / rate)
    assert result["projected_seconds"]["expected"] == pytest.approx(plan.expected_iterations / rate)
    assert result["warnings"] == []
    # One checkpoint measured as a trial writes it (model + Adam state of the digits MLP, about
    # 214 KiB), kept for `sweep plan` and `sweep run`, times what the sweep keeps at once.
    checkpoints = result["checkpoints"]
    assert 150_000 < checkpoints["checkpoint_bytes"] < 300_000
    assert (
        measured_checkpoint_size(tmp_path / "sweep_results", "digits-mlp") == checkpoints["checkpoint_bytes"]
    )
    space = expected_checkpoint_bytes(load_spec(spec).spec, checkpoints["checkpoint_bytes"])
    assert (
        checkpoints["expected_bytes"]
        == space.total_bytes
        == space.checkpoints * checkpoints["checkpoint_bytes"]
    )


def test_the_report_names_rate_projection_memory_milestones_and_n(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.chdir(tmp_path)
    code, out, _ = check(capsys, EXAMPLES / "synthetic_mlp.yaml", "--iterations", "30")
    assert code == 0
    text = " ".join(out.split())
    assert "no Ray, no MLflow" in text and "batch_size=50" in text
    assert "Ran 30 of the trial's 200 iterations, up to --iterations 30" in text
    assert "iterations/s once training" in text
    assert "the sweep's worst case 5,550 iterations ≈" in text and "expected under ASHA" in text
    assert "dataset_size: declared 10,000; fit() was handed 10,000 samples: they match." in text
    assert "Peak memory:" in text and "MiB resident" in text
    assert "No ASHA milestone within these iterations." in text  # the first is at 10,000 samples
    assert "Checkpoints: one takes" in text and "`checkpoint.keep` = 2 per running trial" in text
    assert "OK: the trainable keeps the contract." in text


def test_check_imports_neither_ray_nor_mlflow() -> None:
    code = textwrap.dedent("""
        import sys
        from sweeps.cli import main
        code = main(["check", sys.argv[1], "--json"])
        loaded = sorted(m for m in ("ray", "mlflow") if m in sys.modules)
        assert not loaded, f"sweep check imported {loaded}"
        sys.exit(code)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(EXAMPLES / "digits_mlp.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True


@pytest.mark.parametrize(
    ("args", "argv", "words"),
    [
        ({"behaviour": "no_report"}, [], ["returned without ever calling ctx.report"]),
        ({"behaviour": "return_value"}, [], ["returned a value without ever calling ctx.report"]),
        ({"behaviour": "string_metric"}, [], ["metrics must be real numbers", "`val_accuracy` = '"]),
        ({"behaviour": "no_iteration"}, [], ["without `iteration=`"]),
        ({"behaviour": "ok"}, ["--set", "metric=val_f1"], ["never the sweep's metric `val_f1`"]),
        (
            {"behaviour": "ok"},
            ["--set", "metric=[val_accuracy, latency_ms]", "--set", "mode=[max, min]"],
            ["never the sweep's objective(s) `latency_ms`"],
        ),
        (
            {"behaviour": "ok"},
            ["--set", "constraints=[latency_ms <= 5]"],
            ["never `latency_ms`, which the spec's `constraints` limit"],
        ),
        (
            {"behaviour": "drop_metric"},
            ["--set", "search_space.epochs=2", "--iterations", "24"],
            ["at iteration 20", "never the sweep's metric `val_accuracy`"],
        ),
        (
            {"behaviour": "raise_above", "threshold": 0},
            [],
            [
                "raised RuntimeError: learning rate 0.001 is too high",
                "behaving_trainable.py:",
                "before its first report",
            ],
        ),
        (
            {"behaviour": "short_data"},
            ["--iterations", "100"],
            # The words a trial would fail with (one check: sweeps.training.contract).
            ["reported last at iteration 10 of its 16", "would count as stopped early"],
        ),
    ],
    ids=[
        "never-reports",
        "returns-a-value",
        "non-number",
        "no-iteration",
        "missing-metric",
        "missing-objective",
        "missing-constraint-metric",
        "drops-the-metric",
        "raises",
        "ends-early",
    ],
)
def test_a_trainable_that_breaks_the_contract_is_exit_2_with_one_paragraph(
    args: dict[str, Any],
    argv: list[str],
    words: list[str],
    write_spec: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = check(capsys, behaving_spec(write_spec, **args), *argv)
    assert code == USAGE_ERROR_EXIT, out
    message = " ".join(err.split())
    assert message.startswith("error: trainable `") and "with config {'batch_size': 64" in message
    for word in words:
        assert word in message, message
    assert "Traceback" not in err and "OK" not in out


def test_a_trainable_that_fits_another_n_than_it_declares_is_exit_2(
    write_spec: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "wrong_n.py").write_text(
        textwrap.dedent("""
        import torch
        from sweeps import trainable
        from sweeps.training.loop import fit

        @trainable(dataset_size=1000)
        def train(config, ctx):
            X, y = torch.randn(800, 4), torch.randint(0, 2, (800,))
            model = torch.nn.Linear(4, 2)
            optimizer = torch.optim.SGD(model.parameters(), lr=config["learning_rate"])
            fit(ctx, model, optimizer, torch.nn.functional.cross_entropy, (X, y),
                lambda: {"val_accuracy": 0.5})
    """)
    )
    code, _, err = check(capsys, write_spec(trainable="wrong_n.py:train"))
    assert code == USAGE_ERROR_EXIT
    message = " ".join(err.split())
    assert "declares dataset_size = 1,000, but fit() was handed a training set of 800 samples" in message


def test_reports_that_miss_a_milestone_and_an_unchecked_n_are_warnings(
    write_spec: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = check(capsys, behaving_spec(write_spec, report_every=7), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["reported_iterations"] == [7, 14] and result["missed_milestones"] == [10]
    assert result["seen_dataset_size"] is None
    warnings = " ".join(result["warnings"])
    assert "no report at ASHA's milestone iteration(s) 10" in warnings
    assert "whether `dataset_size` is right was not checked" in warnings


def test_a_diverging_config_is_a_warning_not_a_failure(
    write_spec: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "nan.py").write_text(
        textwrap.dedent("""
        from sweeps import trainable

        @trainable(dataset_size=1000)
        def train(config, ctx):
            for i in range(1, ctx.shape.total_iterations + 1):
                if ctx.should_report(i):
                    ctx.report(iteration=i, val_accuracy=float("nan"))
    """)
    )
    code, out, _ = check(capsys, write_spec(trainable="nan.py:train"), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["diverged"] is True and "this config diverged" in " ".join(result["warnings"])


def test_iterations_below_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(capsys, EXAMPLES / "digits_mlp.yaml", "--iterations", "0")
    assert code == USAGE_ERROR_EXIT and "--iterations" in err and "Traceback" not in err
