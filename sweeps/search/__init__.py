"""Search: the Optuna search space and sampler, and what the study records of each trial.

Tune's searcher and scheduler built on them are in :mod:`sweeps.ray_backend`.
"""
