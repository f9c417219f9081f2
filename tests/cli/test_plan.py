"""`sweep plan`: the budget before any trial, without starting or importing Ray.

How fast it answers is a benchmark matter, not a test's: a timed assertion here failed
under a loaded machine (3.1 s against 3 s) while the property that makes it fast, no
Ray import, holds. That property is asserted instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sweeps.cli import main
from sweeps.store.space import record_checkpoint_size
from tests.conftest import EXAMPLES, REPO


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_plan_prints_the_tables_for_every_example(example: Path) -> None:
    process = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import sys; from sweeps.cli import main; code = main(['plan', sys.argv[1]]); "
                "assert 'ray' not in sys.modules, 'plan must not start or even import Ray'; sys.exit(code)"
            ),
            str(example),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert process.returncode == 0, process.stderr
    out = process.stdout
    assert "training set N =" in out
    assert "iterations/epoch" in out and "samples/iteration" in out
    assert "ASHA rungs" in out and "expected trials" in out
    assert "worst case" in out and "expected under ASHA" in out


def test_plan_json_for_the_synthetic_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(EXAMPLES / "synthetic_mlp.yaml"), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["dataset_size"] == 10_000 and plan["drop_last"] is False
    assert plan["budget_unit"] == "samples"
    rows = {row["batch_size"]: row for row in plan["batch_sizes"]}
    assert rows[100]["iterations_per_epoch"] == 100 and rows[100]["max_total_iterations"] == 500
    first = plan["rungs"][0]
    assert first["milestone"] == 10_000
    assert first["milestone_iterations_by_batch_size"] == {"50": 200, "100": 100, "200": 50, "500": 20}
    assert plan["expected_iterations"] < plan["worst_case_iterations"]


def test_plan_set_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["plan", str(EXAMPLES / "digits_mlp.yaml"), "--set", "scheduler.grace_period=6", "--json"]) == 0
    )
    plan = json.loads(capsys.readouterr().out)
    assert plan["rungs"][0]["milestone"] == 6
    assert not any("ASHA can never stop" in w for w in plan["warnings"])


def test_plan_warns_instead_of_failing_on_oversized_batches(write_spec, capsys) -> None:
    spec = write_spec(
        search_space={
            "batch_size": {"type": "categorical", "values": [64, 4096]},
            "epochs": 2,
            "learning_rate": 0.01,
        }
    )
    assert main(["plan", str(spec), "--json"]) == 0
    assert any("4096" in w for w in json.loads(capsys.readouterr().out)["warnings"])


def test_plan_bad_spec_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: x\ntrainable: digits_mlp\nmetric: a\nmode: max\nnum_samples: 0\nsearch_space: {}\n"
    )
    assert main(["plan", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "num_samples" in err and str(spec) in err


def test_plan_unknown_trainable_is_exit_2(write_spec, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(write_spec(trainable="nope"))]) == 2
    assert "field `trainable`" in capsys.readouterr().err


def test_plan_derives_the_default_grace_period_from_max_t_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The digits example's max_t is 900 iterations; without its own grace period, auto gives 900 / 3^3 → 34.
    assert (
        main(["plan", str(EXAMPLES / "digits_mlp.yaml"), "--set", "scheduler.grace_period=auto", "--json"])
        == 0
    )
    plan = json.loads(capsys.readouterr().out)
    assert plan["grace_period_auto"] is True and plan["grace_period"] == 34 and plan["max_t"] == 900
    assert [rung["milestone"] for rung in plan["rungs"]] == [34, 102, 306]
    assert main(["plan", str(EXAMPLES / "digits_mlp.yaml"), "--set", "scheduler.grace_period=auto"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "rungs at 34, 102, 306 iterations; max_t 900; grace_period: auto = 34, derived from max_t" in out


def test_plan_gives_each_bracket_its_rungs_share_and_budget(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "plan",
        str(EXAMPLES / "digits_mlp.yaml"),
        "--set",
        "scheduler.grace_period=auto",
        "--set",
        "scheduler.brackets=3",
    ]
    assert main([*args, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    brackets = plan["brackets"]
    assert [b["milestones"] for b in brackets] == [[34, 102, 306], [102, 306], [306]]
    assert sum(b["probability"] for b in brackets) == pytest.approx(1)
    assert brackets[0]["probability"] > brackets[1]["probability"] > brackets[2]["probability"]
    assert sum(b["expected_trials"] for b in brackets) == pytest.approx(plan["num_samples"])
    assert sum(b["expected_iterations"] for b in brackets) == pytest.approx(plan["expected_iterations"])
    # A later first rung stops less: a trial of a higher bracket costs more on average.
    per_trial = [b["expected_iterations"] / b["expected_trials"] for b in brackets]
    assert per_trial == sorted(per_trial)
    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "3 Hyperband brackets" in out and "of budget" in out and "│ 2 │ 306 │" in out


@pytest.mark.parametrize(
    "overrides, field, fix",
    [
        (
            ["scheduler.grace_period=auto", "scheduler.brackets=4"],
            "scheduler.brackets",
            "at most `brackets: 3`",
        ),  # max_t: auto
        (
            ["scheduler.grace_period=100", "scheduler.max_t=800", "scheduler.brackets=3"],
            "scheduler.brackets",
            "at most `brackets: 2`",
        ),  # bracket 2 would start at 900
        (["scheduler.brackets=0"], "scheduler.brackets", "`brackets: 1`"),
        (["scheduler.brackets=-2"], "scheduler.brackets", "`brackets: 1`"),
        (["scheduler.grace_period=sometext"], "scheduler.grace_period", "`grace_period: auto`"),
    ],
)
def test_bad_grace_periods_and_brackets_are_exit_2_naming_the_field_and_the_fix(
    overrides: list[str],
    field: str,
    fix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", str(EXAMPLES / "digits_mlp.yaml")] + [f"--set={o}" for o in overrides]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"field `{field}`" in err and fix in err and "digits_mlp.yaml" in err
    assert "Traceback" not in err


def test_the_last_bracket_may_have_its_only_rung_at_max_t(capsys: pytest.CaptureFixture[str]) -> None:
    """Rungs at 100, 300 and 900 = max_t: bracket 2 stops nothing, as Hyperband's last bracket."""
    overrides = ["scheduler.grace_period=100", "scheduler.max_t=900", "scheduler.brackets=3"]
    assert (
        main(["plan", str(EXAMPLES / "digits_mlp.yaml"), "--json"] + [f"--set={o}" for o in overrides]) == 0
    )
    assert [b["milestones"] for b in json.loads(capsys.readouterr().out)["brackets"]] == [
        [100, 300, 900],
        [300, 900],
        [900],
    ]


def test_plan_multiplies_the_checked_checkpoint_by_the_checkpoints_kept(
    write_spec: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 24, 2: `sweep check` measured one checkpoint; the plan says what the sweep's take at once."""
    monkeypatch.setenv("COLUMNS", "300")
    spec = write_spec(max_concurrent=3, checkpoint={"every_epochs": 1, "keep": 2})
    assert main(["plan", str(spec)]) == 0
    assert "Their size is not measured yet: `sweep check` measures one" in capsys.readouterr().out
    record_checkpoint_size(tmp_path / "results", "tiny", 100_000, {})
    assert main(["plan", str(spec), "--json"]) == 0
    checkpoints = json.loads(capsys.readouterr().out)["checkpoints"]
    # keep (2) × the trials at once (3) + the best trial's last = 7 checkpoints
    assert checkpoints["expected_checkpoints"] == 7 and checkpoints["expected_bytes"] == 700_000
    assert main(["plan", str(spec)]) == 0
    assert (
        "Checkpoints: at most 683.6 KiB: 7 checkpoints of 97.7 KiB at most at once" in capsys.readouterr().out
    )
    # keep_pruned: every trial may keep `keep` (they may all be pruned)
    assert main(["plan", str(spec), "--set", "checkpoint.keep_pruned=true", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoints"]["expected_checkpoints"] == 2 * 6
