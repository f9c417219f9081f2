"""Per-node resource checks: fractional GPUs, the largest node, autoscaler node types."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sweeps.backend.resources import NodeShape, check_resources
from sweeps.cli import main
from sweeps.errors import ResourceError
from sweeps.ray_backend.cluster import autoscaler_node_types, live_nodes
from sweeps.spec.models import SweepSpec
from tests.conftest import REPO, small_spec


def spec_with(**resources: float) -> SweepSpec:
    return SweepSpec.model_validate(small_spec(resources=resources))


def ray_node(node_id: str, alive: bool = True, **resources: float) -> dict:
    return {"NodeID": node_id, "Alive": alive, "Resources": resources}


def test_a_trial_needing_more_than_any_node_is_refused_although_the_total_suffices() -> None:
    three_small = live_nodes([ray_node(f"n{i}", CPU=1.0) for i in range(3)])
    with pytest.raises(ResourceError) as error:
        check_resources(spec_with(cpu=3), "spec.yaml", three_small)
    message = str(error.value)
    assert "spec.yaml" in message and "field `resources`" in message and "cpu=3" in message
    assert "single node" in message and "CPU=1" in message and "CPU=3" in message


def test_more_than_the_cluster_total_names_the_total() -> None:
    with pytest.raises(ResourceError, match=r"cpu=64.*CPU=2, GPU=0 in total"):
        check_resources(spec_with(cpu=64), "spec.yaml", [NodeShape("a", 2, 0)])


def test_a_gpu_trial_on_a_cpu_cluster_is_refused() -> None:
    with pytest.raises(ResourceError, match=r"gpu=0.25"):
        check_resources(spec_with(cpu=1, gpu=0.25), "spec.yaml", [NodeShape("a", 8, 0)])


@pytest.mark.parametrize(
    ("gpu", "expected"),
    [(0.25, 8), (0.5, 4), (1, 2), (0.3, 6)],  # 0.3: three per GPU, the rest is idle
)
def test_fractional_gpus_pack_trials_per_gpu(gpu: float, expected: int) -> None:
    two_gpu_nodes = [NodeShape("a", 16, 1), NodeShape("b", 16, 1)]
    assert check_resources(spec_with(cpu=1, gpu=gpu), "spec.yaml", two_gpu_nodes) == expected


def test_concurrency_counts_whole_trials_per_node() -> None:
    # 3 + 1 CPUs hold one 2-CPU trial each, not two: the spare CPUs are on different nodes.
    assert (
        check_resources(
            spec_with(cpu=2), "spec.yaml", [NodeShape("a", 3, 0), NodeShape("b", 1, 0), NodeShape("c", 2, 0)]
        )
        == 2
    )


def test_dead_nodes_do_not_count() -> None:
    shapes = live_nodes([ray_node("a", CPU=4.0), ray_node("b", alive=False, CPU=64.0)])
    assert [s.cpu for s in shapes] == [4.0]


def test_explicit_max_concurrent_wins_over_auto() -> None:
    spec = SweepSpec.model_validate(small_spec(max_concurrent=1))
    assert check_resources(spec, "spec.yaml", [NodeShape("a", 8, 0)]) == 1


def test_autoscaler_node_types_come_from_the_launcher_bootstrap_config(tmp_path: Path) -> None:
    """On a `ray up` cluster the GPU workers may not exist yet: their node type counts."""
    bootstrap = tmp_path / "ray_bootstrap_config.yaml"
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    bootstrap.write_text(yaml.safe_dump(config))
    shapes = autoscaler_node_types(None, bootstrap)
    by_name = {s.name: s for s in shapes}
    head, gpu = by_name[config["head_node_type"]], by_name["gpu_worker"]
    assert head.count == 1 and head.gpu == 0
    assert gpu.gpu == 1 and gpu.count == config["available_node_types"]["gpu_worker"]["max_workers"]
    # gpu: 0.25 fits although no GPU node is up yet; concurrency = 4 per GPU worker.
    concurrency = check_resources(spec_with(cpu=1, gpu=0.25), "spec.yaml", shapes)
    assert concurrency == 4 * gpu.count


def test_no_bootstrap_config_means_a_fixed_cluster(tmp_path: Path) -> None:
    assert autoscaler_node_types(None, tmp_path / "absent.yaml") == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("resources", "expected"),
    [({"cpu": 3, "gpu": 0}, "cpu=3"), ({"cpu": 1, "gpu": 0.25}, "gpu=0.25")],
)
def test_cli_refuses_resources_the_local_cluster_never_has(
    ray_session, write_spec, capsys, resources: dict, expected: str
) -> None:
    """The session's Ray has one node with 2 CPUs and no GPU; no trial may start."""
    spec = write_spec(name="too-big", resources=resources)
    code = main(["run", str(spec), "--json"])
    err = capsys.readouterr().err
    assert code == 2
    assert "field `resources`" in err and expected in err and "Traceback" not in err
    assert not (spec.parent / "results" / "too-big" / "ray").exists(), "no trial may have started"


@pytest.mark.slow
def test_after_a_refusal_the_fixed_spec_runs_under_the_same_name(ray_session, write_spec, capsys) -> None:
    """The refused sweep leaves no folder behind, so no `--overwrite` is needed."""
    refused = write_spec(name="again", resources={"cpu": 3, "gpu": 0}, num_samples=1)
    assert main(["run", str(refused), "--json"]) == 2
    assert not (refused.parent / "results" / "again").exists()
    fixed = write_spec(name="again", resources={"cpu": 1, "gpu": 0}, num_samples=1)
    code = main(["run", str(fixed), "--json"])
    assert code == 0, capsys.readouterr().err[-2000:]


def distributed(
    workers: int, cpu: float = 1, gpu: float = 0, max_concurrent: int | str = "auto"
) -> SweepSpec:
    return SweepSpec.model_validate(
        small_spec(resources={"cpu": cpu, "gpu": gpu, "workers": workers}, max_concurrent=max_concurrent)
    )


def test_a_distributed_trial_counts_as_one_bundle_per_worker() -> None:
    # 2 CPUs hold two 1-CPU workers: one 2-worker trial at a time, not two trials.
    assert check_resources(distributed(2), "spec.yaml", [NodeShape("a", 2, 0)]) == 1
    assert check_resources(distributed(2), "spec.yaml", [NodeShape("a", 5, 0)]) == 2


def test_the_workers_of_a_trial_may_spread_over_nodes() -> None:
    # One worker on each 1-CPU node: a 2-worker trial fits although no node holds both.
    assert check_resources(distributed(2), "spec.yaml", [NodeShape("a", 1, 0), NodeShape("b", 1, 0)]) == 1


def test_gpu_workers_count_per_gpu_bundle() -> None:
    eight_gpus = [NodeShape("a", 64, 4), NodeShape("b", 64, 4)]
    assert check_resources(distributed(4, cpu=2, gpu=1), "spec.yaml", eight_gpus) == 2
    assert (
        check_resources(distributed(4, cpu=2, gpu=2), "spec.yaml", eight_gpus) == 1
    )  # whole GPUs: fractional ones are refused by the spec


def test_more_workers_than_the_cluster_holds_is_refused_naming_workers() -> None:
    with pytest.raises(ResourceError) as error:
        check_resources(distributed(4), "spec.yaml", [NodeShape("a", 2, 0)])
    message = str(error.value)
    assert "spec.yaml" in message and "workers=4" in message and "CPU=2" in message


def test_workers_each_too_large_for_any_node_are_refused() -> None:
    with pytest.raises(
        ResourceError, match=r"hold only 1 worker\(s\).*fewer than 2.*`resources.workers` to 1"
    ):
        check_resources(
            distributed(2, cpu=2),
            "spec.yaml",
            [NodeShape("a", 2, 0), NodeShape("b", 1, 0), NodeShape("c", 1, 0)],
        )


def test_max_concurrent_of_distributed_trials_is_capped_by_the_resources() -> None:
    # Beyond what fits, Train runs would wait holding their trial (ray-project/ray#54305).
    assert check_resources(distributed(2, max_concurrent=8), "spec.yaml", [NodeShape("a", 2, 0)]) == 1
    assert check_resources(distributed(1, max_concurrent=8), "spec.yaml", [NodeShape("a", 2, 0)]) == 8
