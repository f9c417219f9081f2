"""The shapes of a Ray cluster's nodes, for the resource check (:mod:`sweeps.backend.resources`).

An autoscaling cluster (``ray up cluster.yaml``) may start with only its CPU head; its
GPU workers appear when trials ask for them. There the shapes that count are the node
types the autoscaler may launch, read from the cluster config the autoscaler reports to
the GCS or, failing that, from the launcher's ``~/ray_bootstrap_config.yaml`` on the head.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sweeps.backend.resources import NodeShape

#: Written by the Ray cluster launcher on the head node of every `ray up` cluster.
BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")


def live_nodes(nodes: Iterable[dict[str, Any]]) -> list[NodeShape]:
    """Shapes of the alive nodes in ``ray.nodes()``."""
    return [
        NodeShape(
            str(node.get("NodeID", "?"))[:12],
            node["Resources"].get("CPU", 0.0),
            node["Resources"].get("GPU", 0.0),
        )
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
            NodeShape(
                group.name,
                float(group.resources.get("CPU", 0)),
                float(group.resources.get("GPU", 0)),
                # -1 means "no limit"; any large count gives the same answers here.
                count=group.max_count if group.max_count >= 0 else 10_000,
            )
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
        count = (
            1
            if name == config.get("head_node_type")
            else min(int(node_type.get("max_workers", global_max)), global_max)
        )
        shapes.append(NodeShape(name, float(resources.get("CPU", 0)), float(resources.get("GPU", 0)), count))
    return shapes


def cluster_shapes() -> list[NodeShape]:
    """The node shapes of the Ray cluster this process is connected to."""
    import ray

    try:
        # compat: cluster-config
        from ray._private.state import state

        cluster_config = state.get_cluster_config()
    except Exception:  # noqa: BLE001 - a private API: an older or newer Ray may lack it
        cluster_config = None
    return autoscaler_node_types(cluster_config) or live_nodes(ray.nodes())  # type: ignore[no-untyped-call]  # unannotated in Ray
