"""Contract tests: each private Ray or Optuna internal sweeps relies on still holds.

A failure names the assumption (see sweeps/ray_backend/compat.py) and the installed
release, so that a Ray upgrade says which part of resume or tracking it broke.
"""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
import ray

from sweeps.ray_backend.compat import ASSUMPTIONS, Assumption

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"#\s*compat:\s*([a-z0-9-]+)")


@pytest.mark.parametrize("assumption", ASSUMPTIONS, ids=lambda a: a.name)
def test_the_assumption_holds_on_the_installed_release(assumption: Assumption) -> None:
    try:
        assumption.check()
    except Exception as exc:  # noqa: BLE001 - any failure is the assumption breaking
        pytest.fail(
            f"compat assumption `{assumption.name}` ({', '.join(assumption.where)}) no longer holds on "
            f"ray {ray.__version__} / optuna {optuna.__version__}: {assumption.what}. Check failed with "
            f"{type(exc).__name__}: {exc}"
        )


@pytest.mark.parametrize("assumption", ASSUMPTIONS, ids=lambda a: a.name)
def test_each_module_that_relies_on_an_assumption_names_it(assumption: Assumption) -> None:
    for where in assumption.where:
        names = MARKER.findall((ROOT / where).read_text(encoding="utf-8"))
        assert assumption.name in names, (
            f"{where} relies on `{assumption.name}` but has no `# compat: {assumption.name}`"
        )


def test_every_compat_marker_in_the_code_is_a_listed_assumption() -> None:
    listed = {a.name: set(a.where) for a in ASSUMPTIONS}
    for path in sorted((ROOT / "sweeps").rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for name in MARKER.findall(path.read_text(encoding="utf-8")):
            assert name in listed, f"{where} names `{name}`, which sweeps/ray_backend/compat.py does not list"
            assert where in listed[name], f"{where} relies on `{name}` but compat.py does not list it there"


def test_a_broken_assumption_fails_with_its_name() -> None:
    def broken() -> None:
        raise AttributeError("'ASHAScheduler' object has no attribute '_brackets'")

    with pytest.raises(pytest.fail.Exception, match="compat assumption `asha-rungs`"):
        test_the_assumption_holds_on_the_installed_release(
            Assumption("asha-rungs", ("x.py",), "rungs", broken)
        )
