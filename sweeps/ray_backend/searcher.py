"""The sweep's searcher in Ray Tune: :class:`~sweeps.search.truthful_study.TruthfulStudy`
as a Tune ``Searcher``.

Tune asks it for each new trial's config and tells it each delivered result and each
trial's end; the study does the rest. It subclasses Tune's public ``Searcher``, not
``OptunaSearch``, so nothing here depends on Ray's Optuna integration's internals.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from ray.tune.search import Searcher

from sweeps.backend import StopRule
from sweeps.search.truthful_study import TruthfulStudy
from sweeps.training.batching import points_in


class TruthfulSearcher(Searcher):
    """Asks the study for configs and tells it every trial's reports and end."""

    def __init__(
        self,
        study: TruthfulStudy,
        metric: str,
        mode: str,
        rules: list[StopRule] | None = None,
        error_of: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.study = study
        #: Trial id → the traceback Tune wrote for it: Tune tells a searcher only that a
        #: trial errored, and calls it before the callbacks that read the error file.
        self.error_of = error_of
        #: Asked before each new trial: a sweep past its limits starts no more (Tune then
        #: ends the run once the running trials have finished).
        self.rules = list(rules or [])

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its TuneConfig, this searcher included, into `tuner.pkl`; a resumed
        # sweep builds its own searcher and rules, so the rules (which hold the ledger) stay out.
        return {**self.__dict__, "rules": [], "error_of": None}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        # The space, metric and mode come with the study; Tune's own `param_space` is empty.
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        for rule in self.rules:
            if not rule.allows_new_trials():
                return Searcher.FINISHED  # type: ignore[return-value]  # Ray's annotation omits its own FINISHED
        return self.study.ask(trial_id)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.study.report(trial_id, points_in(result))

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        error_text = self.error_of(trial_id) if error and self.error_of else None
        self.study.finish(trial_id, points_in(result) if result else None, error, error_text)

    def save(self, checkpoint_path: str) -> None:
        # Tune snapshots its searcher with the experiment. The study in SQLite is the
        # searcher's whole state, so an empty record is saved, and `restore` re-reads it.
        with open(checkpoint_path, "wb") as stream:
            pickle.dump({}, stream)

    def restore(self, checkpoint_path: str) -> None:
        # Called by Ray on `Tuner.restore`; the study was attached when it was opened.
        self.study.attach_existing_trials()
