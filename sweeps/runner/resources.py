"""What a Ray cluster can ever place, and how many trials fit in it at once.

A trial is one Ray actor, and an actor runs on exactly one node. So a spec asking for
``cpu: 3`` can never start on three 1-CPU nodes, although the cluster has 3 CPUs in
total: the check is against each node's shape, not against the sum. Fractional GPUs
pack trials onto one GPU (``gpu: 0.25`` = four trials per GPU), as Ray schedules them.

An autoscaling cluster (``ray up cluster.yaml``) may start with only its CPU head; its
GPU workers appear when trials ask for them. There the shapes that count are the node
types the autoscaler may launch, read from the cluster config the autoscaler reports to
the GCS or, failing that, from the launcher's ``~/ray_bootstrap_config.yaml`` on the head.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeps.errors import ResourceError
from sweeps.spec.models import SweepSpec

#: Written by the Ray cluster launcher on the head node of every `ray up` cluster.
BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")


@dataclass(frozen=True)
class NodeShape:
    """A node (or an autoscaler node type) and how many of it the cluster can have."""

    name: str
    cpu: float
    gpu: float
    count: int = 1

    def trials_that_fit(self, cpu: float, gpu: float) -> int:
        """Trials of ``cpu``/``gpu`` each that one such node holds at once."""
        fits = math.floor(self.cpu / cpu + 1e-9)
        if gpu > 0:
            fits = min(fits, math.floor(self.gpu / gpu + 1e-9))
        return max(0, fits)


def live_nodes(nodes: Iterable[dict[str, Any]]) -> list[NodeShape]:
    """Shapes of the alive nodes in ``ray.nodes()``."""
    return [
        NodeShape(str(node.get("NodeID", "?"))[:12], node["Resources"].get("CPU", 0.0), node["Resources"].get("GPU", 0.0))
        for node in nodes
        if node.get("Alive") and node.get("Resources")
    ]


def autoscaler_node_types(cluster_config: Any = None, bootstrap: Path = BOOTSTRAP_CONFIG) -> list[NodeShape]:
    """Node types an autoscaler may launch; empty for a fixed cluster.

    ``cluster_config`` is Ray's ``autoscaler_pb2.ClusterConfig`` (or None when no
    autoscaler reported one); the launcher's bootstrap file is the fallback.
    """
    if cluster_config is not None and cluster_config.node_group_configs:
        return [
            NodeShape(group.name, float(group.resources.get("CPU", 0)), float(group.resources.get("GPU", 0)),
                      # -1 means "no limit"; any large count gives the same answers here.
                      count=group.max_count if group.max_count >= 0 else 10_000)
            for group in cluster_config.node_group_configs
        ]
    path = bootstrap.expanduser()
    if not path.exists():
        return []
    import yaml

    config = yaml.safe_load(path.read_text()) or {}
    global_max = int(config.get("max_workers", 0))
    shapes = []
    for name, node_type in (config.get("available_node_types") or {}).items():
        resources = node_type.get("resources") or {}
        count = 1 if name == config.get("head_node_type") else min(int(node_type.get("max_workers", global_max)), global_max)
        shapes.append(NodeShape(name, float(resources.get("CPU", 0)), float(resources.get("GPU", 0)), count))
    return shapes


def cluster_shapes() -> list[NodeShape]:
    """The node shapes of the Ray cluster this process is connected to."""
    import ray

    try:
        from ray._private.state import state

        cluster_config = state.get_cluster_config()
    except Exception:  # noqa: BLE001 - a private API: an older or newer Ray may lack it
        cluster_config = None
    return autoscaler_node_types(cluster_config) or live_nodes(ray.nodes())  # type: ignore[no-untyped-call]  # unannotated in Ray


def check_resources(spec: SweepSpec, source: str, shapes: list[NodeShape]) -> int:
    """How many trials can run at once; refuse a spec that no node can ever hold."""
    want = spec.resources
    total_cpu = sum(s.cpu * s.count for s in shapes)
    total_gpu = sum(s.gpu * s.count for s in shapes)
    if want.cpu > total_cpu or want.gpu > total_gpu:
        raise ResourceError(
            f"{source}: field `resources` asks for cpu={want.cpu:g}, gpu={want.gpu:g} per "
            f"trial, but the Ray cluster has only CPU={total_cpu:g}, GPU={total_gpu:g} in total, so no "
            "trial could ever start. Lower `resources` or add nodes to the cluster."
        )
    fits = sum(s.trials_that_fit(want.cpu, want.gpu) * s.count for s in shapes)
    if fits == 0:
        largest_cpu = max(s.cpu for s in shapes)
        largest_gpu = max(s.gpu for s in shapes)
        raise ResourceError(
            f"{source}: field `resources` asks for cpu={want.cpu:g}, gpu={want.gpu:g} per "
            f"trial. The Ray cluster has CPU={total_cpu:g}, GPU={total_gpu:g} in total, but a "
            f"trial runs on a single node and no node has that much: the largest offer "
            f"CPU={largest_cpu:g} and GPU={largest_gpu:g} ({len(shapes)} node(s) or node types). "
            "Lower `resources` to fit one node, or add a larger node to the cluster."
        )
    if spec.max_concurrent == "auto":
        return fits
    return int(spec.max_concurrent)
