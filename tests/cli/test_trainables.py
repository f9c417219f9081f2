"""`sweep trainables` lists the built-ins with their declared dataset sizes."""

from __future__ import annotations

import pytest

from sweeps.cli import main


def test_lists_builtins_with_sizes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["trainables"]) == 0
    out = capsys.readouterr().out
    assert "digits_mlp" in out and "1,438" in out
    assert "synthetic_mlp" in out and "10,000" in out
