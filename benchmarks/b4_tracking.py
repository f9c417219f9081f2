"""B4: tracking overhead (tracking off · our MLflow tracking · Ray's ``MLflowLoggerCallback``).

The measurement itself belongs to the tracking work and lives in
``benchmarks/tracking_overhead.py``, whose ``main()`` runs it. This module is the hook
that puts it in the table: it calls that ``main()`` and turns what it returns into rows.

``main()`` may return

- a :class:`benchmarks.harness.Scenario` (used as it is);
- a mapping ``{figure: {contender: value}}`` or ``{contender: value}`` (one row per figure);
- anything else (the module printed its own figures; the table says so).

Until that module exists, B4 appears in the table as "not measured".
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import numbers
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import Scenario

MODULE = "benchmarks.tracking_overhead"
TITLE = "tracking overhead, added wall %"


def run(reps: int, workdir: Path) -> Scenario:
    if importlib.util.find_spec(MODULE) is None:
        scenario = Scenario("B4", TITLE, ["(not measured)"])
        scenario.notes.append(f"B4: `{MODULE.replace('.', '/')}.py` does not exist yet; nothing measured.")
        return scenario
    module = importlib.import_module(MODULE)
    kwargs = _supported(module.main, reps=reps, workdir=workdir)
    # Its own table goes to stderr with the other scenarios' progress: stdout keeps one table.
    with _own_argv(MODULE), contextlib.redirect_stdout(sys.stderr):
        returned = module.main(**kwargs)
    return to_scenario(returned)


def to_scenario(returned: Any) -> Scenario:
    """Turn what ``tracking_overhead.main()`` returned into the B4 rows."""
    if isinstance(returned, Scenario):
        return returned
    if isinstance(returned, dict) and returned:
        if all(isinstance(v, numbers.Real) for v in returned.values()):
            returned = {"added wall %": returned}
        if all(isinstance(v, dict) for v in returned.values()):
            contenders = list(dict.fromkeys(c for values in returned.values() for c in values))
            scenario = Scenario("B4", TITLE, contenders)
            for figure, values in returned.items():
                row = scenario.row(str(figure))
                for contender, value in values.items():
                    row.add(contender, float(value) if isinstance(value, numbers.Real) else None)
            ours = [
                v
                for c, v in returned.get("added wall %", {}).items()
                if "sweeps" in c.lower() or "our" in c.lower()
            ]
            if ours and isinstance(ours[0], numbers.Real):
                scenario.check("added wall %", "", None, "≤ 10 %", float(ours[0]) <= 10)
            return scenario
    scenario = Scenario("B4", TITLE, ["(see its own output above)"])
    scenario.notes.append(
        f"B4: `{MODULE}.main()` printed its figures itself (it returned {type(returned).__name__})."
    )
    return scenario


def _supported(function: Any, **candidates: Any) -> dict[str, Any]:
    parameters = inspect.signature(function).parameters
    return {name: value for name, value in candidates.items() if name in parameters}


@contextlib.contextmanager
def _own_argv(name: str) -> Iterator[None]:
    """``main()`` may parse ``sys.argv``; ours names scenarios it does not know."""
    saved = sys.argv
    sys.argv = [name]
    try:
        yield
    finally:
        sys.argv = saved
