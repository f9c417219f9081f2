"""The slow-files-first ordering of the suite (tests/file_durations.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.file_durations import TABLE, order_by_file_duration, read_table, totals


@dataclass
class _Item:
    nodeid: str


def test_longer_files_go_first_and_each_file_keeps_its_tests_in_order() -> None:
    items = [_Item(n) for n in ("a.py::x", "a.py::y", "b.py::x", "c.py::x", "c.py::y", "d.py::x")]
    ordered = order_by_file_duration(items, {"c.py": 90.0, "b.py": 10.0})
    assert [i.nodeid for i in ordered] == ["c.py::x", "c.py::y", "b.py::x", "a.py::x", "a.py::y", "d.py::x"]


def test_totals_add_setup_call_and_teardown_per_file() -> None:
    lines = [
        "12.50s call     tests/x/test_a.py::test_one[p]",
        "2.00s setup    tests/x/test_a.py::test_one[p]",
        "3.00s call     tests/test_b.py::test_two",
        "(3265 durations < 0.005s hidden.)",
    ]
    assert totals(lines) == {"tests/x/test_a.py": 14.5, "tests/test_b.py": 3.0}


def test_the_table_names_test_files_that_exist() -> None:
    table = read_table(TABLE)
    assert len(table) > 10
    root = Path(__file__).resolve().parents[1]
    missing = [file for file in table if not (root / file).is_file()]
    assert not missing, f"tests/file_durations.txt names files that are gone: {missing}; refresh it"


def test_comments_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    table = tmp_path / "t.txt"
    table.write_text("# header\n\n220 tests/a.py  # the longest\n5 tests/b.py\n")
    assert read_table(table) == {"tests/a.py": 220.0, "tests/b.py": 5.0}
