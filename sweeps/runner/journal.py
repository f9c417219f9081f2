"""The result journal: ``<storage>/<name>/results.jsonl``, every result the driver received.

Ray Tune snapshots its experiment state every few seconds, the Optuna study keeps only the
sweep's metric, and the MLflow writer batches records off the driver's hot path, so a
``kill -9`` loses a different tail of each. The journal is the one record that is written
synchronously, one line per result, by a callback that runs before any other (Ray calls
callbacks after the searcher and before the experiment snapshot that could make the
result's checkpoint the point a trial restarts from). ``sweep resume`` uses it to:

- know how far each trial got, so a trial restarted from an older checkpoint does not
  deliver the same iterations twice (:class:`~sweeps.runner.trial.RayTrialContext`);
- fill the steps MLflow lost (:mod:`sweeps.tracking.recovery`);
- rebuild ASHA's rungs, which Ray does not checkpoint.

A line is written with one ``write`` and flushed to the kernel at once; a driver killed
mid-line leaves a truncated last line, which :func:`read_journal` skips.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import IO, Any

from ray.tune import Callback

from sweeps.training.batching import points_in

JOURNAL_FILE = "results.jsonl"

#: Ray's own keys worth keeping: `done` tells a trial Ray stopped (ASHA) from one cut by a
#: crash, and `checkpoint_dir_name` that the result's checkpoint was fully written.
_RAY_KEYS_KEPT = ("done", "checkpoint_dir_name")
_RAY_KEYS_DROPPED = frozenset({
    "training_iteration", "time_total_s", "time_this_iter_s", "time_since_restore", "timestamp",
    "date", "trial_id", "experiment_id", "experiment_tag", "pid", "hostname", "node_ip", "config",
    "iterations_since_restore", "timesteps_since_restore", "timesteps_total", "episodes_total",
    "should_checkpoint", "warmup_time",
})


def journal_entry(result: dict[str, Any]) -> dict[str, Any]:
    """The part of a Ray result worth keeping: the trainable's metrics and our context keys."""
    entry: dict[str, Any] = {}
    for key, value in result.items():
        if key in _RAY_KEYS_DROPPED or "/" in key:
            continue
        if key in _RAY_KEYS_KEPT or isinstance(value, (str, bool)) or value is None:
            entry[key] = value
        elif isinstance(value, numbers.Real):
            # typeshed's numbers.Real has no __int__, although int, numpy's integers and every
            # other Real a trainable reports convert.
            entry[key] = float(value) if isinstance(value, float) else int(value)  # type: ignore[call-overload]
    return entry


class ResultJournal(Callback):
    """Appends each result to the journal; skips iterations a trial delivered before."""

    def __init__(self, path: Path, delivered: dict[str, int] | None = None) -> None:
        self.path = Path(path)
        self._delivered = dict(delivered or {})
        self._stream: IO[str] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles callbacks into its experiment state; an open file does not pickle,
        # and whoever resumes builds a new journal anyway.
        return {"path": self.path, "_delivered": {}, "_stream": None}

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        # One write for the whole batch a worker delivered (see sweeps.training.batching).
        self._append(trial.trial_id, *points_in(result))

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if trial.last_result:
            self._append(trial.trial_id, trial.last_result)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _append(self, trial_id: str, *results: dict[str, Any]) -> None:
        lines = []
        for result in results:
            iteration = result.get("iteration")
            if not isinstance(iteration, numbers.Real) or iteration <= self._delivered.get(trial_id, -1):
                continue
            self._delivered[trial_id] = int(iteration)  # type: ignore[call-overload]  # a Real, as above
            lines.append(json.dumps({"trial_id": trial_id, "result": journal_entry(result)}) + "\n")
        if not lines:
            return
        if self._stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Kept open across deliveries (one append per result batch); close() ends it.
            self._stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._stream.write("".join(lines))
        self._stream.flush()


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


def delivered_iterations(journal: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """The last iteration each trial delivered to the driver."""
    return {
        trial_id: max(int(r.get("iteration", 0)) for r in results)
        for trial_id, results in journal.items() if results
    }
