"""Analysis of a sweep after (or while) it runs: tidy DataFrames from MLflow, plots, a report.

Example:
    >>> from sweeps.analysis import load, plots
    >>> sweep = load("digits-mlp", storage="./sweep_results")  # doctest: +SKIP
    >>> plots.learning_curves(sweep).savefig("curves.png")  # doctest: +SKIP
"""

from sweeps.analysis.loading import SweepData, load
from sweeps.analysis.pareto import pareto_front

__all__ = ["SweepData", "load", "pareto_front"]
