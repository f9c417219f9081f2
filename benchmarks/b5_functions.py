"""B5's synthetic multi-fidelity test function, and the trainable that runs it through ``sweep run``.

The multi-fidelity Branin function of Kandasamy, Dasarathy, Schneider and Póczos,
"Multi-fidelity Bayesian Optimisation with Continuous Approximations" (BOCA, ICML 2017,
appendix), with the fidelity z in [0, 1] shared by its three coefficients::

    f(x, z) = a (x2 - b(z) x1² + c(z) x1 - r)² + s (1 - t(z)) cos(x1) + s
    b(z) = 5.1 / (4π²) - 0.01 (1 - z)     c(z) = 5 / π - 0.1 (1 - z)     t(z) = 1 / (8π) + 0.05 (1 - z)
    a = 1, r = 6, s = 10;   x1 in [-5, 10], x2 in [0, 15]

At z = 1 it is Branin, whose minimum 0.397887 is reached at (-π, 12.275), (π, 2.275) and
(9.42478, 2.475). Iteration i of a trial of ``max_t`` iterations evaluates fidelity
z = i / max_t, so a learning curve ranks configs early but not exactly (the low-fidelity
optimum is shifted), and ``max_t`` can be set from 50 to 100,000 for the price of a few
arithmetic operations per report.
"""

from __future__ import annotations

import math
from typing import Any

from sweeps import trainable
from sweeps.training.context import TrainContext

BRANIN_MINIMUM = 0.397887
BRANIN_BOUNDS = {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}


def branin(x1: float, x2: float, z: float = 1.0) -> float:
    """The multi-fidelity Branin function at fidelity ``z`` (1 = the true function)."""
    b = 5.1 / (4 * math.pi**2) - 0.01 * (1 - z)
    c = 5 / math.pi - 0.1 * (1 - z)
    t = 1 / (8 * math.pi) + 0.05 * (1 - z)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def max_t_of(args: dict[str, Any]) -> int:
    return int(args.get("max_t", 100))


@trainable(dataset_size=max_t_of)
def branin_trainable(config: dict[str, Any], ctx: TrainContext) -> None:
    """Branin at fidelity i / max_t at each report (batch size 1 and 1 epoch of max_t samples).

    ``trainable_args.max_t`` sets the trial's length in iterations (default 100).
    """
    max_t = max_t_of(ctx.args)
    for iteration in range(1, ctx.shape.total_iterations + 1):
        if ctx.should_report(iteration):
            ctx.report(
                iteration=iteration, value=branin(float(config["x1"]), float(config["x2"]), iteration / max_t)
            )
