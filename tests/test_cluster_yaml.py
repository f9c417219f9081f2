"""`cluster.yaml` is a valid Ray cluster-launcher config that installs this project everywhere.

Validation uses Ray's own autoscaler code (`prepare_config` fills in the AWS defaults as
`ray up` does, `validate_config` checks the JSON schema); nothing is launched.
"""

from __future__ import annotations

import copy
import re
import shlex
from typing import Any

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import REPO

CLUSTER_YAML = REPO / "cluster.yaml"


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


@pytest.fixture(scope="module")
def prepared(raw: dict[str, Any]) -> dict[str, Any]:
    return prepare_config(copy.deepcopy(raw))


def test_cluster_yaml_passes_rays_autoscaler_validation(prepared: dict[str, Any]) -> None:
    validate_config(prepared)


def test_the_validation_can_fail(raw: dict[str, Any]) -> None:
    """A misspelt key must be caught, or the test above would prove nothing."""
    broken = copy.deepcopy(raw)
    broken["max_worker"] = broken.pop("max_workers")
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(broken))


def test_a_cpu_head_and_an_autoscaling_gpu_pool(prepared: dict[str, Any]) -> None:
    types = prepared["available_node_types"]
    head = types[prepared["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and head["max_workers"] == 0
    pools = [t for name, t in types.items() if name != prepared["head_node_type"]]
    assert pools and all(t["resources"]["GPU"] >= 1 for t in pools)
    assert all(t["min_workers"] < t["max_workers"] for t in pools), "the GPU pool must be able to scale"


def _project_mount(config: dict[str, Any]) -> str:
    """The remote path that file_mounts fills with this repository."""
    mounts = [remote for remote, local in config["file_mounts"].items() if (REPO / local).resolve() == REPO]
    assert len(mounts) == 1, config["file_mounts"]
    return mounts[0]


def _pip_install_targets(commands: list[str]) -> list[str]:
    """Arguments of every `pip install` in ``commands`` (shell operators split commands)."""
    targets: list[str] = []
    for command in commands:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token not in (";", "&&", "||", "|", "&", "(", ")"):
                words.append(token)
                continue
            if words[:2] == ["pip", "install"]:
                targets += [w for w in words[2:] if not w.startswith("-")]
            words = []
    return targets


@pytest.mark.parametrize("role", ["head_setup_commands", "worker_setup_commands"])
def test_every_node_installs_this_project_from_the_mounted_checkout(
    prepared: dict[str, Any], role: str
) -> None:
    project = re.search(r'^name = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert project and project.group(1) == "sweeps"
    targets = _pip_install_targets(prepared[role])  # setup_commands are merged into both
    assert _project_mount(prepared) in targets


@pytest.mark.parametrize("role", ["head_setup_commands", "worker_setup_commands"])
def test_every_node_pins_the_ray_version_it_is_tested_with(prepared: dict[str, Any], role: str) -> None:
    pins = [t for t in _pip_install_targets(prepared[role]) if t.startswith(("ray[", "ray="))]
    assert pins and all(pin.endswith(f"=={ray.__version__}") for pin in pins), pins


def test_token_authentication_reaches_every_node(prepared: dict[str, Any]) -> None:
    mounts = prepared["file_mounts"]
    assert mounts.get("~/.ray/auth_token") == "~/.ray/auth_token"
    for role in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in prepared[role] if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token" in c for c in starts), role


def test_the_head_runs_mlflow_on_postgresql_and_the_nodes_share_storage(prepared: dict[str, Any]) -> None:
    head_commands = " ".join(prepared["head_setup_commands"] + prepared["head_start_ray_commands"])
    assert "postgresql" in head_commands
    assert re.search(r"mlflow server .*--backend-store-uri postgresql://", head_commands)
    worker_setup = " ".join(prepared["worker_setup_commands"])
    assert "mount -t nfs4" in worker_setup and "/mnt/shared" in worker_setup


def test_the_file_is_commented() -> None:
    comments = [line for line in CLUSTER_YAML.read_text().splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 40
