"""The exception hierarchy: every error meant for a user derives from :class:`SweepError`.

The CLI turns any ``SweepError`` into one paragraph on stderr and exit code 2, with no
traceback, so each message must stand on its own: the file, the field, the bad value
and the fix.
"""

from __future__ import annotations


class SweepError(Exception):
    """Base class of every error the user can fix by changing their input."""


class SpecError(SweepError):
    """The sweep spec (YAML file or ``--set`` override) is invalid."""


class TrainableError(SweepError):
    """A trainable cannot be found, imported, or does not honour the contract."""


class ResourceError(SweepError):
    """The spec asks for more resources than the machine or cluster can provide."""


class MetricNotReportedError(TrainableError):
    """A trial finished or reported without the sweep's metric."""


class DatasetSizeError(TrainableError):
    """The training set handed to ``fit`` is not the size the trainable declared."""


class TrialEndedEarlyError(TrainableError):
    """A trial's function returned before its ``total_iterations`` without being stopped."""


class StateError(SweepError):
    """Sweep state on disk is missing, corrupt, or conflicts with the request."""


class TrackingError(SweepError):
    """The MLflow tracking store cannot be reached or written."""


class SweepInterrupted(KeyboardInterrupt):
    """The user stopped the sweep at once (Ctrl-C twice); the message says how to resume.

    A ``KeyboardInterrupt``, not a ``SweepError``: nothing was wrong with the input, and
    code that cleans up on Ctrl-C (closing MLflow runs as KILLED) must still see it. The
    CLI prints the message and exits with ``exit_code``: 130 after Ctrl-C, 143 after
    SIGTERM (128 + the signal's number, what a shell reports for a process it ended).
    """

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code
