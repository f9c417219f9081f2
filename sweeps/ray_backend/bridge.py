"""Ray Tune's callback and stopper hooks, turned into the sweep's listeners and stop rules.

Tune calls a callback with its own ``Trial`` objects and the raw result, held reports
included. :class:`ListenerBridge` is the one Tune callback that carries the sweep's
record keepers (:class:`~sweeps.backend.SweepListener`): it unpacks each delivery
once (:func:`~sweeps.training.batching.points_in`) without Ray's bookkeeping keys
(:func:`~sweeps.ray_backend.formats.without_ray_keys`), shows each listener the same
:class:`~sweeps.backend.TrialInfo`, and reads a failed trial's error once.
:class:`StopBridge` is the one Tune stopper that asks the sweep's stop rules.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from ray import tune

from sweeps.backend import StopRule, SweepListener, TrialError, TrialInfo
from sweeps.ray_backend.formats import without_ray_keys
from sweeps.training.batching import points_in


class ListenerBridge(tune.Callback):
    """Calls each listener, in order, for each trial event Tune reports."""

    def __init__(
        self, listeners: list[SweepListener], notes: Callable[[str], dict[str, Any]] | None = None
    ) -> None:
        self.listeners = list(listeners)
        #: The scheduler's notes on a trial (its bracket, why it stopped it), for TrialInfo.schedule.
        self.notes = notes
        # Tune steps its loop many times a second; only listeners with periodic work
        # (the live view) are called there.
        self._stepping = [
            listener
            for listener in self.listeners
            if type(listener).step_ended is not SweepListener.step_ended
        ]
        self._trials: dict[str, Any] = {}  # trial id → Tune's Trial, for `error_of`

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config (callbacks included) into the experiment snapshot for
        # `Tuner.restore`; listeners hold open files, threads and terminals, and a resumed
        # sweep builds its own.
        return {"listeners": [], "_stepping": [], "notes": None, "_trials": {}}

    def error_of(self, trial_id: str) -> str | None:
        """The error file's text of trial ``trial_id`` (for the searcher, which Tune gives ids only)."""
        trial = self._trials.get(trial_id)
        return None if trial is None else read_trial_error(trial)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._trials[trial.trial_id] = trial
        shown = trial_info(trial, self.notes)
        for listener in self.listeners:
            listener.trial_started(shown)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        shown, points = trial_info(trial, self.notes), points_in(without_ray_keys(result))
        for listener in self.listeners:
            listener.trial_reported(shown, points)

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        # Tune calls this once the trial's save has come back, just before it records the
        # checkpoint as the one to restore from; a result that names a checkpoint arrives
        # earlier, before that round trip to the trial's actor.
        shown = trial_info(trial, self.notes)
        for listener in self.listeners:
            listener.trial_checkpointed(shown)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        shown = trial_info(trial, self.notes)
        for listener in self.listeners:
            listener.trial_completed(shown)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        shown, error = trial_info(trial, self.notes), trial_error(trial)
        for listener in self.listeners:
            listener.trial_failed(shown, error)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        shown = trial_info(trial, self.notes)
        # The error file is read only when a listener wants it (a disk error is known at
        # the first failure, not after the retries).
        raised = [
            listener
            for listener in self.listeners
            if type(listener).trial_raised is not SweepListener.trial_raised
        ]
        if raised:
            error = trial_error(trial)
            for listener in raised:
                listener.trial_raised(shown, error)
        for listener in self.listeners:
            listener.trial_retried(shown)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        for listener in self._stepping:
            listener.step_ended()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        for listener in self.listeners:
            listener.sweep_ended()


class StopBridge(tune.Stopper):
    """Ends the sweep when any stop rule says so."""

    def __init__(self, rules: list[StopRule]) -> None:
        self.rules = list(rules)

    def __getstate__(self) -> dict[str, Any]:
        return {"rules": []}  # Ray pickles stoppers into its snapshot; a resumed sweep builds its own

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        shown = without_ray_keys(result)
        for rule in self.rules:
            rule.observe(trial_id, shown)
        return False

    def stop_all(self) -> bool:
        # Every rule is asked, in order, even after one says stop: a graceful stop's
        # second Ctrl-C raises from its `stop_all`.
        stop = False
        for rule in self.rules:
            stop = rule.stop_all() or stop
        return stop


def trial_info(trial: Any, notes: Callable[[str], dict[str, Any]] | None = None) -> TrialInfo:
    """A Tune ``Trial`` as the sweep's listeners see it (with the scheduler's ``notes`` on it)."""
    last = without_ray_keys(trial.last_result) if trial.last_result else None
    return TrialInfo(
        trial.trial_id,
        trial.config,
        last,
        lambda: _local_checkpoint(trial),
        notes(trial.trial_id) if notes is not None else {},
    )


def read_trial_error(trial: Any) -> str:
    """The traceback Tune wrote for a failed trial (its ``error.txt``)."""
    path = getattr(trial, "error_file", None)
    if path:
        try:
            with open(path) as stream:
                return stream.read()
        except OSError:
            pass
    return "unknown error (Ray recorded no error file)"


def trial_error(trial: Any) -> TrialError:
    """A failed trial's error: Tune's ``error.txt``, and the exception it pickled beside it."""
    exception = raised_exception(trial)
    return TrialError(
        read_trial_error(trial),
        type(exception) if exception is not None else None,
        str(exception) if exception is not None else "",
    )


def raised_exception(trial: Any) -> BaseException | None:
    """What the trial's function raised, unwrapped from Ray's ``RayTaskError``, or None
    (its worker died; or the class, the user's, cannot be loaded here)."""
    # Tune pickles it beside error.txt in the trial's local folder before it calls the
    # callbacks (its `get_pickled_error` reads the storage copy, not there yet).
    from ray import cloudpickle

    try:
        path = trial.pickled_error_file
        if not path or not os.path.isfile(path):
            return None
        with open(path, "rb") as stream:
            error: Any = cloudpickle.load(stream)
    except Exception:  # noqa: BLE001 - unpickling runs the user's classes: anything may fail
        return None
    # RayTaskError (and Ray Train's wrappers of a worker's error) keep the original as `cause`.
    while isinstance(getattr(error, "cause", None), BaseException):
        error = error.cause
    return error if isinstance(error, BaseException) else None


def _local_checkpoint(trial: Any) -> str | None:
    """The local folder of ``trial``'s latest checkpoint, fetched when it is remote (s3://...)."""
    try:
        checkpoint = trial.checkpoint
    except Exception:  # noqa: BLE001 - a trial without a checkpoint manager has none
        return None
    if checkpoint is None:
        return None
    path = str(getattr(checkpoint, "path", checkpoint))
    if os.path.isdir(path):
        return path
    try:
        return str(checkpoint.to_directory(tempfile.mkdtemp(prefix="sweeps-checkpoint-")))
    except Exception:  # noqa: BLE001 - storing the model is best-effort
        return None
