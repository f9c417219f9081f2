"""What the compute can ever place, and how many trials fit in it at once.

A trial is one Ray actor, and an actor runs on exactly one node. So a spec asking for
``cpu: 3`` can never start on three 1-CPU nodes, although the cluster has 3 CPUs in
total: the check is against each node's shape, not against the sum. Fractional GPUs
pack trials onto one GPU (``gpu: 0.25`` = four trials per GPU), as Ray schedules them.

A distributed trial (``workers: W``) is W bundles of ``cpu``/``gpu``, one per worker. Its
workers may sit on different nodes (Ray Train packs them where it can and spreads them
where it must), so a node holds whole *bundles*, and the cluster holds as many such trials
at once as its bundles divide by W. Capping concurrency there matters: a Train run starts
only when all its workers are placed, so trials beyond it would only wait, holding what
they have (ray-project/ray#54305).

A backend reports its node shapes (:func:`sweeps.ray_backend.cluster.cluster_shapes`
reads a Ray cluster's, including the node types an autoscaler may still launch).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from sweeps.errors import ResourceError
from sweeps.spec.models import SweepSpec


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


def check_resources(spec: SweepSpec, source: str, shapes: list[NodeShape]) -> int:
    """How many trials can run at once; refuse a spec that the compute can never hold."""
    want = spec.resources
    workers = want.workers
    total_cpu = sum(s.cpu * s.count for s in shapes)
    total_gpu = sum(s.gpu * s.count for s in shapes)
    asked = f"cpu={want.cpu:g}, gpu={want.gpu:g} per " + (
        f"worker and workers={workers} per trial" if workers > 1 else "trial"
    )
    if want.cpu * workers > total_cpu or want.gpu * workers > total_gpu:
        raise ResourceError(
            f"{source}: field `resources` asks for {asked}, but the Ray cluster has only "
            f"CPU={total_cpu:g}, GPU={total_gpu:g} in total, so no trial could ever start. Lower "
            f"`resources`{' (or `resources.workers`)' if workers > 1 else ''} or add nodes to the cluster."
        )
    bundles = sum(s.trials_that_fit(want.cpu, want.gpu) * s.count for s in shapes)
    fits = bundles // workers
    if fits == 0:
        largest_cpu = max(s.cpu for s in shapes)
        largest_gpu = max(s.gpu for s in shapes)
        if workers > 1:
            raise ResourceError(
                f"{source}: field `resources` asks for {asked}. The Ray cluster has CPU={total_cpu:g}, "
                f"GPU={total_gpu:g} in total, but a worker runs on a single node and the nodes hold "
                f"only {bundles} worker(s) of that size between them (the largest offers CPU={largest_cpu:g} "
                f"and GPU={largest_gpu:g}), fewer than {workers}. Lower `resources.workers` to {bundles} "
                "or less, lower `cpu`/`gpu`, or add nodes to the cluster."
            )
        raise ResourceError(
            f"{source}: field `resources` asks for {asked}. The Ray cluster has "
            f"CPU={total_cpu:g}, GPU={total_gpu:g} in total, but a trial runs on a single node and "
            f"no node has that much: the largest offer CPU={largest_cpu:g} and GPU={largest_gpu:g} "
            f"({len(shapes)} node(s) or node types). "
            "Lower `resources` to fit one node, or add a larger node to the cluster."
        )
    if spec.max_concurrent == "auto":
        return fits
    if workers > 1:
        # More Train runs than fit would wait for their workers while holding what they
        # have: the deadlock of ray-project/ray#54305. Never more than the resources hold.
        return min(int(spec.max_concurrent), fits)
    return int(spec.max_concurrent)


def local_cpus() -> int:
    """The CPUs an embedded Ray finds here: those this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1
