"""The result journal: ``<storage>/<name>/results.jsonl``, every result the driver received.

Ray Tune snapshots its experiment state every few seconds, the Optuna study keeps only the
sweep's metric, and the MLflow writer batches records off the driver's hot path, so a
``kill -9`` loses a different tail of each. The journal is the one record that is written
synchronously, one line per result, by the first of the sweep's listeners
(:class:`sweeps.runner.recorders.JournalListener`: Ray calls it after the searcher and
before the experiment snapshot that could make the result's checkpoint the point a trial
restarts from). ``sweep resume`` uses it to:

- know how far each trial got, so a trial restarted from an older checkpoint does not
  deliver the same iterations twice (:class:`~sweeps.ray_backend.trial.RayTrialContext`);
- fill the steps MLflow lost (:mod:`sweeps.tracking.recovery`);
- rebuild ASHA's rungs, which Ray does not checkpoint.

Besides results, it holds one line of what the scheduler said of a trial
(``{"trial_id": ..., "schedule": {"bracket": 1}}``) as the trial starts, and again with
the rung, value and cut-off once ASHA stopped it; :func:`read_journal` skips those lines,
and :func:`journal_brackets` reads the brackets back for ``sweep resume``.

A delivery is written with one ``write`` and flushed to the kernel at once; a driver killed
mid-line leaves a truncated last line, which :func:`read_journal` skips.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import IO, Any

JOURNAL_FILE = "results.jsonl"

#: The keys a backend adds to a result that the journal keeps (a backend's own bookkeeping
#: never reaches it: :func:`sweeps.ray_backend.formats.without_ray_keys`): ``done`` tells a
#: trial the scheduler stopped (ASHA) from one cut by a crash, and ``checkpoint_dir_name``
#: that the result's checkpoint was fully written.
BACKEND_KEYS_KEPT = ("done", "checkpoint_dir_name")


def journal_entry(result: dict[str, Any]) -> dict[str, Any]:
    """The part of a result worth keeping: the trainable's metrics, our context keys and
    :data:`BACKEND_KEYS_KEPT`."""
    entry: dict[str, Any] = {}
    for key, value in result.items():
        if "/" in key:
            continue
        if key in BACKEND_KEYS_KEPT or isinstance(value, (str, bool)) or value is None:
            entry[key] = value
        elif isinstance(value, numbers.Real):
            # typeshed's numbers.Real has no __int__, although int, numpy's integers and every
            # other Real a trainable reports convert.
            entry[key] = float(value) if isinstance(value, float) else int(value)  # type: ignore[call-overload]
    return entry


class ResultJournal:
    """Appends each result to the journal; skips iterations a trial delivered before."""

    def __init__(self, path: Path, delivered: dict[str, int] | None = None) -> None:
        self.path = Path(path)
        self._delivered = dict(delivered or {})
        self._stream: IO[str] | None = None

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def append(self, trial_id: str, *results: dict[str, Any]) -> None:
        """Write ``results`` (a delivered batch, oldest first) with one ``write``."""
        lines = []
        for result in results:
            iteration = result.get("iteration")
            if not isinstance(iteration, numbers.Real) or iteration <= self._delivered.get(trial_id, -1):
                continue
            self._delivered[trial_id] = int(iteration)  # type: ignore[call-overload]  # a Real, as above
            lines.append(json.dumps({"trial_id": trial_id, "result": journal_entry(result)}) + "\n")
        self._write(lines)

    def note(self, trial_id: str, schedule: dict[str, Any]) -> None:
        """Write what the scheduler says of a trial (its bracket; why it stopped it)."""
        self._write([json.dumps({"trial_id": trial_id, "schedule": schedule}) + "\n"])

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        if self._stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Kept open across deliveries (one append per result batch); close() ends it.
            self._stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            if _ends_mid_line(self.path):
                # A line torn by a full disk or a killed driver: the next one starts afresh
                # rather than completing it into a line that reads as neither.
                lines.insert(0, "\n")
        try:
            self._stream.write("".join(lines))
            self._stream.flush()
        except OSError:
            # A full disk: what was written is kept; the buffered rest is dropped, not
            # written half at close (sweeps.runner.disk_watch stops the sweep).
            stream, self._stream = self._stream, None
            try:
                stream.close()
            except OSError:
                pass
            raise


def _ends_mid_line(path: Path) -> bool:
    try:
        with open(path, "rb") as stream:
            if stream.seek(0, 2) == 0:
                return False
            stream.seek(-1, 2)
            return stream.read(1) != b"\n"
    except OSError:
        return False


def read_journal(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Each trial's journaled results in the order received (a torn last line is skipped)."""
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return results
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            trial_id, result = entry["trial_id"], entry["result"]
        except (ValueError, KeyError, TypeError):
            continue  # the line a killed driver was writing
        results.setdefault(str(trial_id), []).append(result)
    return results


def journal_brackets(path: Path) -> dict[str, int]:
    """Trial id → the Hyperband bracket the journal's schedule lines give it."""
    brackets: dict[str, int] = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return brackets
    for line in text.splitlines():
        if '"schedule"' not in line:
            continue  # a result: no need to parse it
        try:
            entry = json.loads(line)
            bracket = entry["schedule"]["bracket"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(bracket, int):
            brackets[str(entry["trial_id"])] = bracket
    return brackets


def delivered_iterations(journal: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """The last iteration each trial delivered to the driver."""
    return {
        trial_id: max(int(r.get("iteration", 0)) for r in results)
        for trial_id, results in journal.items()
        if results
    }
