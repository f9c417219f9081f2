"""CLI conventions (issue 16, part 5): plain flags in every --help, shell completion, no ASHA
talk without a scheduler. `sweep status` at 80 columns is tested on a real sweep in
test_lifecycle.py."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import typer

from sweeps.cli import main
from sweeps.cli.app import app
from tests.cli.test_usage import sweep_script


def command_names() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "argv", [[]] + [[name] for name in command_names()], ids=lambda a: " ".join(a) or "sweep"
)
def test_every_help_shows_flags_as_plain_flags(
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """typer 0.29 printed `--overwrite <bool>`, as if the flag took a value."""
    monkeypatch.setenv("COLUMNS", "120")
    assert main([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert "--help" in out and "Show this message and exit." in out
    assert "<bool>" not in out
    help_line = next(line for line in out.splitlines() if "--help" in line)
    assert help_line.split("--help")[1].split()[:1] == ["Show"], help_line


def test_run_help_through_the_installed_script_lists_its_flags_plainly() -> None:
    proc = subprocess.run(
        [sweep_script(), "run", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert proc.returncode == 0, proc.stderr
    for flag, words in (("--overwrite", "Replace"), ("--json", "Print one JSON"), ("--resume", "Continue")):
        line = next(line for line in proc.stdout.splitlines() if f" {flag} " in line)
        assert line.split(flag)[1].split()[0] == words.split()[0], line
    assert "<bool>" not in proc.stdout


def test_install_completion_writes_a_bash_completion_that_completes_commands_and_options(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    # Typed at a bash prompt: typer finds the shell among the command's parent processes
    # (shellingham), so bash must be one, whatever started the tests; `; exit` keeps bash
    # from replacing itself with the command.
    proc = subprocess.run(
        ["bash", "-c", f"'{sweep_script()}' --install-completion; exit $?"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    script = tmp_path / ".bash_completions" / "sweep.sh"
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
    assert "_SWEEP_COMPLETE=complete_bash" in script.read_text()
    # What bash does on <TAB>, through the same variables the installed script sets.
    for words, cword, expected in (("sweep pl", 1, "plan"), ("sweep run --ov", 2, "--overwrite")):
        done = subprocess.run(
            [sweep_script()],
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "_SWEEP_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)},
        )
        assert done.returncode == 0 and done.stdout.split() == [expected], (words, done.stdout, done.stderr)


def test_plan_without_a_scheduler_says_nothing_of_asha(
    write_spec: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", str(write_spec(scheduler={"type": "none"}))]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "ASHA" not in out
    assert "No early stopping" in out and "every trial run to completion" in out
