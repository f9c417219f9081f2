"""MLflow tracking: a parent run per sweep, a nested child run per trial, step = iteration.

See :mod:`sweeps.tracking.callback` (the listener) for what lands in MLflow,
:mod:`sweeps.tracking.trial_runs` for a trial run's tags, params and end (shared with
:mod:`sweeps.tracking.recovery`, which mends a crashed sweep's runs),
:mod:`sweeps.tracking.writer` for how it gets there off the driver's hot path, and
:mod:`sweeps.tracking.preflight` for where it logs.
"""

from sweeps.tracking.callback import MlflowTracker, trial_metrics
from sweeps.tracking.naming import run_name
from sweeps.tracking.preflight import tracking_uri
from sweeps.tracking.runs import RUNS_FILE, RunsFile
from sweeps.tracking.session import start_tracking
from sweeps.tracking.writer import TrackingWriter

__all__ = [
    "RUNS_FILE",
    "MlflowTracker",
    "RunsFile",
    "TrackingWriter",
    "run_name",
    "start_tracking",
    "tracking_uri",
    "trial_metrics",
]
