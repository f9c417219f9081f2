"""Search: the Optuna search space and sampler, the truthful searcher, and ASHA."""
