"""``sweep.json``'s ``state`` as a state machine: its states, its legal transitions, one writer.

A sweep's record moves through these states (the arrows are every transition the code
makes, and the only ones :func:`transition` writes)::

    (no record) --sweep run--> running
    running --the job ends--> finished | aborted | stopped | interrupted
    running --sweep resume--> running       (its driver is gone: it reads as ``crashed``)
    stopped | interrupted --sweep resume--> running
    finished --sweep resume, num_samples above the trials it has--> running
    aborted: final (its failed trials would abort it again: fix them, `sweep run --overwrite`)

``crashed`` is never written: it is how a record that says ``running`` reads once its
driver has died (:func:`observed_state`), so a driver killed with ``kill -9`` (which
writes nothing) still shows as crashed. Every other module reads the state through
:func:`recorded_state` or :func:`observed_state` and changes it only through
:func:`transition`, which refuses an illegal move with a :class:`~sweeps.errors.StateError`
naming the file, both states and the fix.
"""

from __future__ import annotations

import enum
import os
import socket
from pathlib import Path
from typing import Any

from sweeps.errors import StateError
from sweeps.sqlite import count_study_trials
from sweeps.store.state import SweepPaths, read_state, write_state


class SweepState(str, enum.Enum):
    """How a sweep stands, as ``sweep.json`` records it (and ``crashed``, as it reads)."""

    RUNNING = "running"
    FINISHED = "finished"  # the job ended: every trial, or as many as a limit let start (drain)
    ABORTED = "aborted"  # too many trials failed, or a trial broke the trainable contract
    STOPPED = "stopped"  # a graceful stop: running trials checkpointed first
    INTERRUPTED = "interrupted"  # stopped at once (Ctrl-C twice): trials restart from older checkpoints
    CRASHED = "crashed"  # recorded `running`, and its driver is gone: never written

    def __str__(self) -> str:
        return self.value


#: Every legal transition: the state recorded now (None: no record yet) → the states it may become.
LEGAL_TRANSITIONS: dict[SweepState | None, frozenset[SweepState]] = {
    None: frozenset({SweepState.RUNNING}),
    SweepState.RUNNING: frozenset(
        {
            SweepState.RUNNING,
            SweepState.FINISHED,
            SweepState.ABORTED,
            SweepState.STOPPED,
            SweepState.INTERRUPTED,
        }
    ),
    SweepState.STOPPED: frozenset({SweepState.RUNNING}),
    SweepState.INTERRUPTED: frozenset({SweepState.RUNNING}),
    SweepState.FINISHED: frozenset({SweepState.RUNNING}),
    SweepState.ABORTED: frozenset(),
}


def driver_alive(state: dict[str, Any]) -> bool:
    """Whether the driver recorded in ``state`` still runs (only knowable on its host)."""
    pid, host = state.get("driver_pid"), state.get("driver_host")
    if (
        state.get("state") != SweepState.RUNNING.value
        or not isinstance(pid, int)
        or host not in (None, socket.gethostname())
    ):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a recycled pid belongs to some other program
        return b"sweep" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def recorded_state(paths: SweepPaths, record: dict[str, Any]) -> SweepState:
    """The ``state`` field of ``record`` (read from ``paths.state_file``), validated."""
    value = record.get("state")
    try:
        state = SweepState(value)
    except ValueError:
        state = None
    if state is None or state is SweepState.CRASHED:
        written = ", ".join(f"`{s}`" for s in SweepState if s is not SweepState.CRASHED)
        raise StateError(
            f"{paths.state_file}: field `state` is {value!r}, but a sweep's record holds one of "
            f"{written}. Restore the file from a backup, or start the sweep again with "
            "`sweep run ... --overwrite`."
        )
    return state


def observed_state(paths: SweepPaths, record: dict[str, Any]) -> SweepState:
    """The recorded state, except that ``running`` with no live driver reads ``crashed``."""
    state = recorded_state(paths, record)
    return SweepState.CRASHED if state is SweepState.RUNNING and not driver_alive(record) else state


def check_transition_from(paths: SweepPaths, record: dict[str, Any] | None, to: SweepState) -> None:
    """Refuse ``to`` where the record alone decides it: the table, a live driver, an aborted sweep."""
    source = None if record is None else recorded_state(paths, record)
    if source is SweepState.ABORTED and record is not None:
        raise StateError(_aborted_is_final(paths, record))
    if to not in LEGAL_TRANSITIONS[source]:
        raise StateError(
            f"{paths.state_file}: the sweep `{paths.name}` is `{source or 'not recorded'}` and cannot "
            f"become `{to}` (legal from `{source or 'not recorded'}`: "
            f"{', '.join(sorted(f'`{s}`' for s in LEGAL_TRANSITIONS[source])) or 'none'}). "
            f"{_fix(paths, source, to)}"
        )
    if (
        source is SweepState.RUNNING
        and to is SweepState.RUNNING
        and record is not None
        and driver_alive(record)
    ):
        raise StateError(
            f"{paths.directory}: the sweep `{paths.name}` is still running (driver pid "
            f"{record['driver_pid']}). Stop it first with `sweep stop {paths.name} --storage "
            f"{paths.storage}`, then resume it."
        )


def check_transition(paths: SweepPaths, record: dict[str, Any] | None, to: SweepState, **fields: Any) -> None:
    """Refuse an illegal transition of ``record`` to ``to`` with ``fields`` (see the module's diagram)."""
    check_transition_from(paths, record, to)
    source = None if record is None else recorded_state(paths, record)
    if source is SweepState.FINISHED and to is SweepState.RUNNING:
        trials = count_study_trials(paths.study_file)
        if int(fields.get("num_samples") or 0) <= trials:
            raise StateError(
                f"{paths.directory}: the sweep `{paths.name}` already finished its {trials} trials. "
                f"See its result with `sweep best {paths.name} --storage {paths.storage}`, raise "
                f"`num_samples` to add trials (`sweep resume {paths.name} --set num_samples=N`), or "
                "start it again with `sweep run ... --overwrite`."
            )


def transition(paths: SweepPaths, to: SweepState, **fields: Any) -> dict[str, Any]:
    """Move the sweep's record to ``to``, updating ``fields`` with it, in one atomic write.

    With no record yet (a new sweep), ``fields`` are the record. Returns the record written.
    """
    record = read_state(paths) if paths.exists() else None
    check_transition(paths, record, to, **fields)
    written = {**(record or {}), **fields, "state": to.value}
    write_state(paths, written)
    return written


def rewrite_unchanged(paths: SweepPaths) -> None:
    """Write the record back as it is (raises OSError): whether the sweep's folder takes writes."""
    write_state(paths, read_state(paths))


def _aborted_is_final(paths: SweepPaths, record: dict[str, Any]) -> str:
    # The trials that aborted it would abort it again at once: the study holds them.
    reason = (record.get("summary") or {}).get("aborted")
    spec = " ".join(
        [str(record.get("spec_path") or "SPEC.yaml"), *(f"--set {o}" for o in record.get("overrides") or ())]
    )
    return (
        f"{paths.directory}: the sweep `{paths.name}` aborted{f' ({reason})' if reason else ''}, so it "
        f"cannot be resumed: its failed trials would abort it again. Fix what made them fail "
        f"(`sweep status {paths.name} --storage {paths.storage}` shows each error), then start it "
        f"again with `sweep run {spec} --overwrite`."
    )


def _fix(paths: SweepPaths, source: SweepState | None, to: SweepState) -> str:
    if to is SweepState.CRASHED:
        return "`crashed` is never written: a `running` record whose driver died reads as crashed."
    if source is None:
        return f"A new sweep starts `running` (`sweep run`); there is no record at {paths.state_file} yet."
    return (
        f"A `{source}` sweep has ended; it only becomes `running` again, through "
        f"`sweep resume {paths.name} --storage {paths.storage}`."
    )
