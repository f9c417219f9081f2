"""The CLI's one console: wrapped between words on a terminal, one line per message in a log."""

from __future__ import annotations

import os
import pty
import sys

import pytest

from sweeps.cli.console import StartLines, console, warn

MESSAGE = (
    "The best trial 3fc5ba18 left no checkpoint, so no model was stored in MLflow: its trainable "
    "never saved one through `ctx`, and an own loop calls `ctx.save_checkpoint(state)`."
)


def _through_a_terminal(monkeypatch: pytest.MonkeyPatch, stream: str, write: object) -> list[str]:
    """What ``write()`` prints to ``sys.<stream>`` when that is an 80-column pseudo-terminal."""
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w", encoding="utf-8") as terminal:
        monkeypatch.setattr(sys, stream, terminal)
        monkeypatch.setenv("COLUMNS", "80")
        monkeypatch.setenv("TERM", "dumb")  # no colour codes in the captured text
        write()  # type: ignore[operator]
        terminal.flush()
    text = os.read(leader, 65536).decode()
    os.close(leader)
    return text.replace("\r\n", "\n").rstrip("\n").split("\n")


def test_on_a_terminal_a_warning_wraps_between_words_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _through_a_terminal(monkeypatch, "stderr", lambda: warn(MESSAGE))
    assert len(lines) > 1 and all(len(line) <= 80 for line in lines), lines
    assert lines[0].startswith("warning: The best trial")
    # Cut between words only: the words, rejoined with single spaces, are the message.
    assert " ".join(" ".join(lines).split()) == f"warning: {MESSAGE}"


def test_in_a_pipe_a_message_stays_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    warn(MESSAGE)
    console().print(MESSAGE)
    captured = capsys.readouterr()
    assert captured.err == f"warning: {MESSAGE}\n" and captured.out == f"{MESSAGE}\n"


def test_the_start_lines_name_the_sweep_and_go_to_stderr_with_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    StartLines().first("digits-mlp", 40, "/data/sweeps/digits-mlp", None)
    StartLines(stderr=True).first("digits-mlp", 7, "/data/sweeps/digits-mlp", "10.0.0.1:6379", resumed=True)
    captured = capsys.readouterr()
    assert captured.out.startswith("Sweep digits-mlp: starting 40 trials on local Ray (")
    assert captured.out.rstrip().endswith("CPUs); results in /data/sweeps/digits-mlp")
    assert captured.err == (
        "Sweep digits-mlp: resuming with 7 trials on the Ray cluster at 10.0.0.1:6379; "
        "results in /data/sweeps/digits-mlp\n"
    )
