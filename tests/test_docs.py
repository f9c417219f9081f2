"""README.md and docs/*.md stay true: runnable blocks run, relative links resolve.

A fenced block whose info string ends in ``runnable`` is checked:

- ``yaml runnable``: a whole spec (it has ``name``), or a fragment merged into
  ``sweeps/examples/digits_mlp.yaml``; either way ``sweep plan`` must accept it;
- ``bash runnable``: every line is a ``sweep``, ``python -m`` or ``make`` command. Each
  ``sweep`` command's ``--help`` must succeed and list every option the line uses, and a
  ``sweep plan`` of a file in the repository is run; a ``python -m`` module's ``--help``
  must succeed and list its options; a ``make`` target must exist in the Makefile.

Every relative link (and image) must name a file that exists, and an ``#anchor`` a
heading of the file it points into (GitHub's slugs).
"""

from __future__ import annotations

import copy
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeps.cli import main
from tests.conftest import EXAMPLES, REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)(.*)$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Block:
    file: Path
    line: int
    language: str
    runnable: bool
    text: str

    def __str__(self) -> str:
        return f"{self.file.relative_to(REPO)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    found, lines = [], path.read_text().splitlines()
    start: tuple[int, str, bool] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        fence = FENCE.match(line)
        if start is None and fence:
            start, body = (number, fence.group(1), fence.group(2).split()[-1:] == ["runnable"]), []
        elif start is not None and line.startswith("```"):
            found.append(Block(path, start[0], start[1], start[2], "\n".join(body)))
            start = None
        elif start is not None:
            body.append(line)
    assert start is None, f"{path}: a code block opened at line {start[0]} is never closed"
    return found


RUNNABLE = [block for path in DOCS for block in blocks(path) if block.runnable]


def test_every_guide_has_runnable_blocks_and_the_readme_stays_short() -> None:
    files = {block.file for block in RUNNABLE}
    assert set(DOCS) == files, f"no runnable example in {sorted(str(p) for p in set(DOCS) - files)}"
    readme = (REPO / "README.md").read_text()
    # 190: the issues ask for the vocabulary, a sweep, the B5 table and plot, a trainable and
    # a distributed loop in the README itself; everything else lives in docs/.
    assert len(readme.splitlines()) <= 190, (
        "the README is what a newcomer reads first: keep it near 150 lines"
    )
    for guide in DOCS[1:]:
        assert f"](docs/{guide.name})" in readme, f"the README does not link {guide.name}"
        assert blocks(guide)[0].runnable, f"{guide.name} does not open with a runnable example"


def _deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.mark.parametrize("block", [b for b in RUNNABLE if b.language == "yaml"], ids=str)
def test_a_runnable_spec_block_is_a_spec_sweep_plan_accepts(
    block: Block,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    given = yaml.safe_load(block.text)
    assert isinstance(given, dict), f"{block}: not a YAML mapping"
    base = yaml.safe_load((EXAMPLES / "digits_mlp.yaml").read_text())
    spec = given if "name" in given else _deep_merge(base, given)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    code = main(["plan", str(path), "--json"])
    assert code == 0, f"{block}: sweep plan refused it: {capsys.readouterr().err}"


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main([*argv, "--help"])
    out = capsys.readouterr().out
    assert code == 0, f"`sweep {' '.join(argv)} --help` exited {code}"
    return out


def _options(tokens: list[str]) -> list[str]:
    return [token.split("=")[0] for token in tokens if token.startswith("--")]


@pytest.mark.parametrize("block", [b for b in RUNNABLE if b.language == "bash"], ids=str)
def test_a_runnable_shell_block_names_real_commands_and_options(
    block: Block,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # one option per help line, never wrapped
    monkeypatch.chdir(REPO)
    makefile = (REPO / "Makefile").read_text()
    for line in block.text.splitlines():
        tokens = shlex.split(line, comments=True)
        if not tokens:
            continue
        where = f"{block}: `{line.strip()}`"
        if tokens[0] == "sweep":
            if tokens[1].startswith("--"):
                text, options = _help([], capsys), _options(tokens[1:])
            else:
                text, options = _help([tokens[1]], capsys), _options(tokens[2:])
                assert "No such command" not in text, where
            for option in options:
                assert option in text.split(), f"{where}: `{option}` is not in its --help"
            if tokens[1] == "plan" and (REPO / tokens[2]).is_file():
                assert main(tokens[1:]) == 0, f"{where}: {capsys.readouterr().err}"
                capsys.readouterr()
        elif tokens[:2] == ["python", "-m"]:
            proc = subprocess.run(
                [sys.executable, "-m", tokens[2], "--help"],
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=300,
            )
            assert proc.returncode == 0, f"{where}: {proc.stderr[-1000:]}"
            for option in _options(tokens[3:]):
                assert option in proc.stdout, f"{where}: `{option}` is not in its --help"
        elif tokens[0] == "make":
            for target in tokens[1:]:
                assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), (
                    f"{where}: no make target"
                )
        else:
            pytest.fail(f"{where}: a runnable shell block holds only sweep, python -m and make commands")


def github_slug(heading: str) -> str:
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL)
    return {github_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path: Path) -> None:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL)
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.relative_to(REPO)}: the link `{target}` names no file"
        if anchor and linked.suffix == ".md":
            assert anchor in headings(linked), f"{path.relative_to(REPO)}: `{target}`: no such heading"


def test_the_slugs_are_githubs() -> None:
    assert github_slug(" Before the first run: `sweep check`") == "before-the-first-run-sweep-check"
    assert github_slug("What ASHA counts: `scheduler.budget`") == "what-asha-counts-schedulerbudget"


def test_the_readmes_plan_excerpt_is_what_sweep_plan_prints(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    readme = " ".join((REPO / "README.md").read_text().split())
    assert main(["plan", str(EXAMPLES / "digits_mlp.yaml"), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert f"worst case {plan['worst_case_iterations']:,.0f} iterations" in readme
    assert f"expected under ASHA {plan['expected_iterations']:,.0f} iterations" in readme
    for row in plan["batch_sizes"]:  # the table's rows, its cells' padding collapsed
        assert (
            f"│ {row['batch_size']} │ {row['iterations_per_epoch']} │ {row['samples_per_iteration']} │"
            in readme
        ), row
