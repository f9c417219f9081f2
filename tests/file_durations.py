"""The suite's slow files first: a shorter tail when pytest-xdist spreads files over processes.

``make test`` runs ``pytest -n N --dist loadfile --no-loadscope-reorder``: each test file
goes whole to one process, in collection order. Left in alphabetical order, the longest
files (a distributed lifecycle of 3-4 minutes) could start last and run alone while the
other processes sit idle. :func:`order_by_file_duration` moves files with the longest
measured total to the front; files not in the table (new or fast ones) keep their order
after them.

The table, ``tests/file_durations.txt``, is measured, not guessed. Refresh it from a full
run's ``--durations=0`` output:

    python -m pytest -n 2 --dist loadfile --durations=0 > /tmp/durations.txt
    python -m tests.file_durations /tmp/durations.txt > tests/file_durations.txt
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("file_durations.txt")
#: Files that take less than this are left in collection order (sorting them gains nothing).
MIN_SECONDS = 5.0
_DURATION_LINE = re.compile(r"^([\d.]+)s (?:setup|call|teardown)\s+([^:\s]+)::")


def read_table(path: Path = TABLE) -> dict[str, float]:
    """``file path → seconds`` from the table (``SECONDS PATH`` per line; ``#`` starts a comment)."""
    table: dict[str, float] = {}
    if not path.is_file():
        return table
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            seconds, file = line.split(maxsplit=1)
            table[file] = float(seconds)
    return table


def order_by_file_duration(items: list[Any], table: dict[str, float]) -> list[Any]:
    """``items`` with whole files reordered, longest first; a stable sort, so ties keep their order."""

    def file_of(item: Any) -> str:
        return str(item.nodeid).split("::", 1)[0]

    return sorted(items, key=lambda item: -table.get(file_of(item), 0.0))


def totals(lines: Iterable[str]) -> Counter[str]:
    """Each file's total of setup, call and teardown from pytest's ``--durations=0`` lines."""
    per_file: Counter[str] = Counter()
    for line in lines:
        match = _DURATION_LINE.match(line)
        if match:
            per_file[match.group(2)] += float(match.group(1))
    return per_file


def main(argv: list[str]) -> int:
    per_file = totals(Path(argv[0]).read_text().splitlines())
    print("# seconds per test file (setup + call + teardown), from `pytest --durations=0`;")
    print("# written by `python -m tests.file_durations OUTPUT` (tests/file_durations.py)")
    for file, seconds in per_file.most_common():
        if seconds >= MIN_SECONDS:
            print(f"{seconds:.0f} {file}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
