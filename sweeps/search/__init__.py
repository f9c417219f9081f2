"""Search: the Optuna search space and sampler, and what the study records of each trial.

Tune's searcher and scheduler built on them are in :mod:`sweeps.ray_backend`.
"""

from sweeps.search.asha import STOP, AshaBrackets, ScheduleRecorder, asha_rungs_for
from sweeps.search.avoid_failures import FailureAvoidingTPESampler
from sweeps.search.multi_fidelity import MultiFidelityTPESampler
from sweeps.search.space import fixed_values, make_sampler, optuna_distributions
from sweeps.search.truthful_study import TruthfulStudy, open_truthful_study

__all__ = [
    "STOP",
    "AshaBrackets",
    "FailureAvoidingTPESampler",
    "MultiFidelityTPESampler",
    "ScheduleRecorder",
    "TruthfulStudy",
    "asha_rungs_for",
    "fixed_values",
    "make_sampler",
    "open_truthful_study",
    "optuna_distributions",
]
