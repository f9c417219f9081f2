"""The interface between the sweep and where its trials run: what a backend is told and tells.

The runner's record keepers (the result journal, the ledger, the live view, the report
alignment check and the MLflow tracker) are :class:`SweepListener` s, and its reasons to
end a sweep early (a graceful stop, too many failed trials) are :class:`StopRule` s. A
backend (:mod:`sweeps.ray_backend`, or :mod:`sweeps.backend.simulated` without Ray) runs a :class:`SweepJob`
and calls both on the driver thread, listeners in the order given, so that one listener may
read what an earlier one recorded (the live view reads the ledger). What a backend's nodes
offer, and how many trials fit, is :mod:`sweeps.backend.resources`; how a stopped sweep
continues, with the backend's own record of it, is :mod:`sweeps.backend.resume`.

None of it knows Ray: a trial is its id, its config and its latest result, and a report
is a plain dict with the trainable's metrics and the context keys of
:mod:`sweeps.iterations` (``iteration``, ``epoch``, ``samples_seen``...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

__all__ = ["Backend", "StopRule", "SweepJob", "SweepListener", "TrialError", "TrialInfo"]

if TYPE_CHECKING:
    from sweeps.backend.resources import NodeShape
    from sweeps.backend.resume import ResumePlan, ResumeState, SavedSweep
    from sweeps.plan.planner import SweepPlan
    from sweeps.spec.models import SweepSpec
    from sweeps.store.checkpoints import TrialFiles
    from sweeps.store.state import SweepPaths
    from sweeps.training.registry import ResolvedTrainable


def _no_checkpoint() -> str | None:
    return None


@dataclass(frozen=True)
class TrialInfo:
    """One trial as a backend shows it to listeners."""

    trial_id: str
    config: dict[str, Any]
    #: The latest result the backend holds for the trial (None before its first report).
    last_result: dict[str, Any] | None = None
    #: The trial's latest checkpoint as a local folder (fetched first when it lives on
    #: remote storage), or None. A call, because fetching can be slow and is rarely needed.
    latest_checkpoint: Callable[[], str | None] = field(default=_no_checkpoint, compare=False)
    #: What the scheduler says of the trial: its Hyperband bracket (``bracket``, with
    #: brackets), and once it stopped the trial below a rung's cut-off, ``stopped_at_rung``,
    #: ``rung_value`` and ``rung_cutoff`` (:meth:`sweeps.search.asha.Decision.explanation`).
    schedule: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class TrialError:
    """Why a trial raised or failed, as a backend tells its listeners."""

    #: The error as the backend recorded it (a traceback): what users read, in `sweep status`
    #: and MLflow's ``error.txt``.
    text: str
    #: The class of the exception the trial raised, when the backend recovered it (None: the
    #: worker died, or the class cannot be loaded on the driver). Tells a contract error
    #: (:mod:`sweeps.errors`) from any other without reading the text.
    exception: type[BaseException] | None = None
    #: The exception's own message, without the traceback ("" when ``exception`` is None).
    message: str = ""

    def raised(self, *kinds: type[BaseException]) -> bool:
        """Whether the trial raised one of ``kinds`` (or a subclass)."""
        return self.exception is not None and issubclass(self.exception, kinds)


class SweepListener:
    """Hooks a backend calls as trials start, report and end; each does nothing by default."""

    def trial_started(self, trial: TrialInfo) -> None:
        """The trial starts, or starts again (a retry, or a resumed sweep)."""

    def trial_reported(self, trial: TrialInfo, points: list[dict[str, Any]]) -> None:
        """Reports reached the driver: ``points`` oldest first, the one that crossed last.

        A worker holds reports between decision points and sends them together
        (:mod:`sweeps.training.batching`), so one delivery may carry many.
        """

    def trial_checkpointed(self, trial: TrialInfo) -> None:
        """The backend registered a new checkpoint of the trial: a restart now starts from it."""

    def trial_completed(self, trial: TrialInfo) -> None:
        """The trial ended without an error: it ran to its end, or the scheduler stopped it."""

    def trial_failed(self, trial: TrialInfo, error: TrialError) -> None:
        """The trial raised (after its retries), or its worker died; ``error`` says what."""

    def trial_raised(self, trial: TrialInfo, error: TrialError) -> None:
        """The trial raised, or its worker died, and it will be retried (``trial_retried``
        follows); ``error`` says what."""

    def trial_retried(self, trial: TrialInfo) -> None:
        """The trial's worker died or it raised, and it is queued to restart from its last checkpoint."""

    def step_ended(self) -> None:
        """The driver's loop went round once (many times a second): a place for periodic work."""

    def sweep_ended(self) -> None:
        """No trial runs any more (the sweep finished, or was stopped)."""


class StopRule(Protocol):
    """A reason to end the sweep early, asked after each result and each loop step."""

    def observe(self, trial_id: str, result: dict[str, Any]) -> None:
        """A result reached the driver (as the backend delivered it)."""

    def stop_all(self) -> bool:
        """Whether the sweep must end now (may raise KeyboardInterrupt to end it at once)."""

    def allows_new_trials(self) -> bool:
        """Whether another trial may start (asked before each new trial; the running ones go on)."""


@dataclass(frozen=True)
class SweepJob:
    """Everything a backend needs to run (or continue) one sweep's trials."""

    spec: SweepSpec
    plan: SweepPlan
    trainable: ResolvedTrainable
    paths: SweepPaths
    #: Trials that may run at once (what the resources allow, or `max_concurrent`).
    concurrency: int
    #: Trials still to create: `num_samples`, less those a resumed sweep already has.
    trials_to_create: int
    #: Trials created before this run (a resumed sweep): the sampler's seed moves past them.
    trials_so_far: int = 0
    #: A resumed sweep (`sweep resume`): how the backend continues it, as its own
    #: :meth:`Backend.prepare_resume` said. None: a new sweep.
    resume: ResumeState | None = None


class Backend(Protocol):
    """Where trials run. The runner starts it, asks what it can hold, runs a job, stops it."""

    def begin_start(self) -> None:
        """Begin starting (or joining) the compute without waiting for it: the runner does its
        own start-up meanwhile, then calls :meth:`start`."""

    def start(self) -> bool:
        """Start (or join) the compute, or wait for what :meth:`begin_start` began; True when
        this backend started what :meth:`shutdown` must stop."""

    def node_shapes(self) -> list[NodeShape]:
        """What each node (or node type) of the compute offers."""

    def run(self, job: SweepJob, listeners: list[SweepListener], rules: list[StopRule]) -> None:
        """Run the job's trials to the end, telling ``listeners`` and asking ``rules``."""

    def shutdown(self) -> None:
        """Stop what :meth:`start` started."""

    def starting(self) -> str:
        """What starting this backend is, as the start-up says it ("starting Ray (local, 2 CPUs)")."""

    def saved_sweep(self, paths: SweepPaths) -> SavedSweep:
        """This backend's own record of a stopped sweep (:mod:`sweeps.backend.resume`); needs
        no :meth:`start`."""

    def prepare_resume(self, plan: ResumePlan) -> ResumeState:
        """Bring this backend's record in line with ``plan`` and say how :meth:`run` continues it."""

    def trial_files(self, paths: SweepPaths) -> TrialFiles:
        """What this backend keeps on disk of the sweep's trials (checkpoints, errors); needs no
        :meth:`start`."""
