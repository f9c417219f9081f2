"""The record keepers of one run of a sweep: its listeners and stop rules, and how its record ends.

However the run ends (finished, aborted, stopped, or by an exception), :class:`SweepRecorders`
leaves no MLflow run RUNNING and records the ending in ``sweep.json``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from sweeps.backend import SweepListener, TrialInfo
from sweeps.outcomes import OUTCOMES
from sweeps.plan.planner import SweepPlan
from sweeps.runner.abort import AbortRule
from sweeps.runner.checkpoint_pruning import CheckpointPruner
from sweeps.runner.disk_watch import DiskWatch
from sweeps.runner.ledger import TrialLedger
from sweeps.runner.limits import SweepLimits
from sweeps.runner.progress import LiveView
from sweeps.runner.reconcile import Resumption
from sweeps.runner.report_alignment import ReportAlignment
from sweeps.runner.stopping import GracefulStop
from sweeps.runner.summary import SweepSummary
from sweeps.spec.loading import LoadedSpec
from sweeps.store.checkpoints import TrialFiles
from sweeps.store.journal import JOURNAL_FILE, ResultJournal
from sweeps.store.lifecycle import SweepState, transition
from sweeps.store.state import SweepPaths, read_state, utc_now
from sweeps.tracking.callback import MlflowTracker
from sweeps.tracking.recovery import recover_runs
from sweeps.tracking.session import start_tracking


class JournalListener(SweepListener):
    """Writes every delivered result to the result journal (:mod:`sweeps.store.journal`)."""

    def __init__(self, journal: ResultJournal, disk: DiskWatch | None = None) -> None:
        self.journal = journal
        self._disk = disk

    def trial_started(self, trial: TrialInfo) -> None:
        if "bracket" in trial.schedule:  # with brackets: resume judges the trial in the same one
            self._guarded(lambda: self.journal.note(trial.trial_id, {"bracket": trial.schedule["bracket"]}))

    def trial_reported(self, trial: TrialInfo, points: list[dict[str, Any]]) -> None:
        # One write for the whole batch a worker delivered (see sweeps.training.batching).
        self._append(trial.trial_id, points)

    def trial_completed(self, trial: TrialInfo) -> None:
        if trial.last_result:
            self._append(trial.trial_id, [trial.last_result])
        if "stopped_at_rung" in trial.schedule:  # ASHA stopped it: at which rung, and why
            self._guarded(lambda: self.journal.note(trial.trial_id, trial.schedule))

    def _append(self, trial_id: str, points: list[dict[str, Any]]) -> None:
        self._guarded(lambda: self.journal.append(trial_id, *points))

    def _guarded(self, write: Callable[[], None]) -> None:
        if self._disk is not None and self._disk.problem is not None:
            return  # the sweep is stopping: what the journal lacks, a resume recomputes
        try:
            write()
        except OSError as exc:
            if self._disk is None or not self._disk.note_exception(str(self.journal.path), exc):
                raise

    def sweep_ended(self) -> None:
        self.journal.close()


class SweepRecorders:
    """The listeners and stop rules of one run of a sweep, and how its record is finished."""

    def __init__(
        self,
        loaded: LoadedSpec,
        plan: SweepPlan,
        paths: SweepPaths,
        resume: Resumption | None,
        *,
        live: bool,
        progress_lines: bool,
        files: TrialFiles,
    ) -> None:
        spec = loaded.spec
        self._loaded, self._plan, self._paths, self._resume = loaded, plan, paths, resume
        self.ledger = TrialLedger(
            metric=spec.metric,
            mode=spec.mode,
            objectives=spec.objectives,
            constraints=spec.parsed_constraints,
        )
        if resume is not None:  # trials that finished before: the summary spans every run
            self.ledger.trials.update({r.trial_id: r for r in resume.records})
        self.abort = AbortRule(self.ledger, spec)
        self.graceful = GracefulStop(self.ledger, paths)
        self.disk = DiskWatch(paths, self.graceful)
        self.pruner = CheckpointPruner(self.ledger, files, spec.checkpoint)
        self.journal = ResultJournal(paths.directory / JOURNAL_FILE, resume.delivered if resume else None)
        state = read_state(paths)
        self._run = int(state.get("resumes", 0))
        progress = {
            trial_id: results[-1]
            for trial_id, results in (resume.journal if resume else {}).items()
            if results
        }
        progress.update(
            {r.trial_id: r.last_result for r in (resume.records if resume else []) if r.last_result}
        )
        self.limits = SweepLimits(
            spec.limits, self.graceful, float(state.get("spent_seconds") or 0.0), progress
        )
        self.view = (
            LiveView(
                self.ledger,
                spec.name,
                spec.num_samples,
                lines=sys.stdout if progress_lines else None,
                milestones=plan.milestones(),
                budget_unit=spec.budget_unit,
                limits=self.limits,
            )
            if live
            else None
        )
        self.alignment = ReportAlignment(
            plan.dataset_size, plan.drop_last, plan.milestones(), spec.budget_unit
        )
        self.tracker: MlflowTracker | None = None

    def start_tracking(self) -> None:
        """The MLflow parent run, before any trial (after a resumed sweep's runs are repaired)."""
        if not self._loaded.spec.tracking.enabled:
            return
        if self._resume is not None:  # fill the steps a killed driver lost, close finished runs
            recover_runs(self._loaded, self._plan, self._paths, self._resume)
        # The trials earlier sessions ended (the ledger holds the resumed records only, yet).
        counts = self.ledger.counts()
        uri = self._loaded.spec.tracking.uri or self._paths.embedded_tracking_uri
        # A store on this machine's disks is the sweep's own storage: a full one stops the
        # sweep. A tracking server's full disk is its outage, waited out as any other.
        own = uri.startswith(("sqlite:", "file:", "/"))
        self.tracker = start_tracking(
            self._loaded,
            self._plan,
            self._paths,
            ended_before={str(o): counts[o] for o in OUTCOMES},
            on_disk_error=(lambda error: self.disk.note_exception(f"the MLflow store {uri}", error))
            if own
            else None,
        )

    def listeners(self, extra: list[SweepListener]) -> list[SweepListener]:
        # The journal first (the durable record), the ledger before those that read it.
        return [
            JournalListener(self.journal, self.disk),
            self.ledger,
            self.disk,
            self.limits,
            *([self.tracker] if self.tracker else []),
            self.pruner,
            *([self.view] if self.view else []),
            self.alignment,
            *extra,
        ]

    def close_tracking_after(self, error: BaseException | None) -> None:
        if self.tracker is not None:
            self.tracker.close(interrupted=isinstance(error, KeyboardInterrupt))

    def finish(self, summary: SweepSummary) -> None:
        """End the MLflow runs and record how the sweep ended in ``sweep.json``."""
        self.finish_tracking(summary)
        self.record_end(summary)

    def finish_tracking(self, summary: SweepSummary) -> None:
        """End the MLflow runs (the parent's totals unless the sweep stopped) and write them."""
        try:
            if self.tracker is not None and not summary.stopped:
                self.tracker.finish(summary)
                # After the summary, through the CLI's console: not a log line glued to the live view.
                summary.warnings.extend(self.tracker.notes)
        finally:
            if self.tracker is not None:
                self.tracker.close(
                    interrupted=bool(summary.stopped)
                )  # flushes; runs of stopped trials end KILLED

    def record_end(self, summary: SweepSummary) -> None:
        """Record how the sweep ended in ``sweep.json`` (raises OSError when it cannot be written)."""
        spent = {"spent_seconds": self.limits.spent_seconds, "spent_through_run": self._run}
        if summary.stopped:
            transition(
                self._paths, SweepState.STOPPED, summary=summary.to_json(), stopped_at=utc_now(), **spent
            )
        else:
            transition(
                self._paths,
                SweepState.ABORTED if summary.aborted else SweepState.FINISHED,
                summary=summary.to_json(),
                finished_at=utc_now(),
                **spent,
            )
