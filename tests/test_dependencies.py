"""Every dependency in pyproject.toml has an upper bound, and the bounds admit what is installed.

An open `typer>=0.12` let typer 0.29 in, whose vendored click broke every usage error
(issue 12, 1b). The bounds say what was tested; this checks that they exist and still
admit the environment the suite runs in (so a bound is raised together with a test run).
"""

from __future__ import annotations

from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import REPO

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
REQUIREMENTS = [
    (group, Requirement(line))
    for group, lines in [
        ("dependencies", PYPROJECT["dependencies"]),
        *PYPROJECT["optional-dependencies"].items(),
    ]
    for line in lines
]


@pytest.mark.parametrize(("group", "requirement"), REQUIREMENTS, ids=[str(r) for _, r in REQUIREMENTS])
def test_every_dependency_has_an_upper_bound(group: str, requirement: Requirement) -> None:
    upper = [s for s in requirement.specifier if s.operator in ("<", "<=", "==", "~=")]
    assert upper, f"{group}: {requirement} has no upper bound"


#: What the test command installs (`pip install -e '.[test]'`): every one of them must be there.
INSTALLED = [(group, requirement) for group, requirement in REQUIREMENTS if group in ("dependencies", "test")]


@pytest.mark.parametrize(("group", "requirement"), INSTALLED, ids=[str(r) for _, r in INSTALLED])
def test_the_installed_release_is_admitted(group: str, requirement: Requirement) -> None:
    try:
        installed = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{group}: {requirement.name} is not installed, though the test command installs it")
    # A local build tag (torch's 2.13.0+cpu) is the same release for the bounds.
    release = Version(Version(installed).public)
    assert requirement.specifier.contains(release, prereleases=True), (
        f"{group}: installed {requirement.name} {installed} is outside {requirement.specifier}"
    )
