"""The result journal: one line per result, what is worth keeping of it, torn lines skipped.

That Ray's bookkeeping never reaches it is tested with Ray's formats (tests/ray_backend/test_formats.py)."""

from __future__ import annotations

from pathlib import Path

from sweeps.store.journal import ResultJournal, delivered_iterations, journal_entry, read_journal


def test_entries_keep_numbers_text_done_and_checkpoint_but_not_nested_values() -> None:
    entry = journal_entry(
        {
            "val_accuracy": 0.9,
            "iteration": 12,
            "epoch": 1.0,
            "done": True,
            "checkpoint_dir_name": "checkpoint_000001",
            "extra": {"a": 1},
            "config/a": 1,
            "node_id": "n",
            "note": None,
        }
    )
    assert entry == {
        "val_accuracy": 0.9,
        "iteration": 12,
        "epoch": 1.0,
        "done": True,
        "checkpoint_dir_name": "checkpoint_000001",
        "node_id": "n",
        "note": None,
    }


def test_a_torn_last_line_is_skipped_and_repeats_are_not_written(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    journal = ResultJournal(path, delivered={"t1": 10})
    for iteration in (5, 10, 12, 12, 20):
        journal.append("t1", {"iteration": iteration, "val_accuracy": 0.1})
    journal.close()
    with path.open("a") as stream:
        stream.write('{"trial_id": "t1", "result": {"itera')  # the driver died here
    results = read_journal(path)
    assert [r["iteration"] for r in results["t1"]] == [12, 20]
    assert delivered_iterations(results) == {"t1": 20}
