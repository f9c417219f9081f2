"""Resuming a sweep across the seam: what the runner and a backend tell each other.

A sweep whose driver died or was stopped leaves three records (see
:mod:`sweeps.runner.resume`): the Optuna study, the result journal, and the backend's own
record of its trials (Ray's experiment snapshot, or the simulator's). The runner
reconciles them in two steps, each a :class:`~sweeps.backend.Backend` method:

1. :meth:`~sweeps.backend.Backend.saved_sweep` reads the backend's record as a
   :class:`SavedSweep`: which trials it holds, unfinished or ended, with their last result;
2. the runner decides, from the study and the journal, which trials finished, which the
   backend continues, which it never saw (:class:`AddedTrial`) and which were lost, and
   hands that to :meth:`~sweeps.backend.Backend.prepare_resume` as a :class:`ResumePlan`.
   The backend brings its record in line and returns a :class:`ResumeState`, which goes
   into :attr:`sweeps.backend.SweepJob.resume` and which only the backend reads.

None of it knows Ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sweeps.store.journal import delivered_iterations

if TYPE_CHECKING:
    from sweeps.spec.models import SweepSpec
    from sweeps.store.state import SweepPaths

#: Where a trial stands in a backend's record: it runs again, it ended, or it ended with an error.
SavedStatus = Literal["unfinished", "ended", "errored"]


@dataclass(frozen=True)
class SavedTrial:
    """One trial as the backend's record left it."""

    status: SavedStatus
    #: The last result the record holds (empty before the trial's first report).
    last_result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SavedSweep:
    """What a backend kept of a stopped sweep (read by :meth:`~sweeps.backend.Backend.saved_sweep`)."""

    #: The backend can continue its unfinished trials from this record. False: there is none
    #: (the driver died before the backend's first one) or it is unusable; trials that were
    #: running are then lost, and the rest start afresh.
    continuable: bool
    #: Trial id → the trial as recorded.
    trials: dict[str, SavedTrial] = field(default_factory=dict)
    #: What the backend had to do to read it (a torn file set aside), for the user.
    notes: list[str] = field(default_factory=list)

    @property
    def unfinished(self) -> list[str]:
        return [trial_id for trial_id, trial in self.trials.items() if trial.status == "unfinished"]


@dataclass(frozen=True)
class AddedTrial:
    """A trial the study holds unfinished that the backend's record never saw: it is added
    back under its own id and continues from its last checkpoint the journal saw."""

    trial_id: str
    #: The study's trial number (Ray's trial folder and tag count from it).
    number: int
    config: dict[str, Any]
    #: The sampled parameters alone (without the spec's fixed values).
    params: dict[str, Any]
    #: The trial's results in the journal, oldest first.
    results: list[dict[str, Any]]


@dataclass(frozen=True)
class ResumePlan:
    """How the study and the journal say the sweep continues; the backend's record follows it."""

    spec: SweepSpec
    paths: SweepPaths
    saved: SavedSweep
    #: Trial ids that ended (by the study, else by the journal): never run again.
    finished: set[str]
    #: Trials the backend's record lacks, to continue.
    added: list[AddedTrial]
    #: Trials the backend's record will hold at the sweep's end: ``num_samples`` less those
    #: that ended outside its view.
    backend_total: int
    #: Every result delivered before (the result journal): the scheduler's rungs start from it.
    journal: dict[str, list[dict[str, Any]]]
    #: Trial id → the Hyperband bracket it was drawn into before.
    brackets: dict[str, int]


@dataclass(frozen=True)
class ResumeState:
    """How a backend continues a sweep: made by its ``prepare_resume``, carried in the job,
    read by it alone."""

    #: Continue the backend's own (corrected) record of the sweep; False: start afresh.
    restore: bool
    #: Trials that continue, in the order the backend will restart them.
    continued: list[str] = field(default_factory=list)
    #: Trial id → the last iteration it delivered before: not delivered twice.
    delivered: dict[str, int] = field(default_factory=dict)
    #: Every result delivered before: the scheduler's rungs start from it.
    journal: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Trial id → the Hyperband bracket it was drawn into before.
    brackets: dict[str, int] = field(default_factory=dict)
    #: About how many iterations between the continued trials' checkpoints and the stop
    #: are computed again (for the resume's note).
    iterations_to_redo: int = 0


def delivered_for(journal: dict[str, list[dict[str, Any]]], trial_ids: list[str]) -> dict[str, int]:
    """Each of ``trial_ids``'s last delivered iteration, as the journal holds it."""
    delivered = delivered_iterations(journal)
    return {trial_id: delivered[trial_id] for trial_id in trial_ids if trial_id in delivered}


def fresh_start(plan: ResumePlan) -> ResumeState:
    """A backend with no record to continue: every unfinished trial was lost, the rest start afresh."""
    return ResumeState(restore=False, journal=plan.journal, brackets=dict(plan.brackets))
