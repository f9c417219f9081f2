"""Free a distributed trial's Ray Train workers on the driver when the trial ends or retries.

Ray Train V2 places a trial's workers in a placement group that its controller creates.
A placement group made by an ordinary actor lives as long as the *job*, not the actor: when
Tune stops a trial (ASHA, a stop) and Ray kills the trial's actor, the controller and the
workers die, but the placement group keeps their CPUs and GPUs reserved. Ray Train's own
guard, a detached ``PlacementGroupCleaner`` actor, asks Ray's state API whether the
controller is alive; it cannot when more than one Ray runs on the machine ("Found multiple
active Ray instances"), as on a shared development box, and it polls. Measured on the
embedded 2-CPU Ray: the first trial's group stayed CREATED with both CPUs while the next
trial's group waited PENDING for minutes: the deadlock of ray-project/ray#54305.

So rank 0 writes down the id of its placement group (:func:`record_placement_group`) in
the sweep's folder as it starts, and this callback on the driver, which outlives every
trial, removes the groups of a trial once it has ended or before it is retried.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from ray import tune
from ray.util.placement_group import PlacementGroup, remove_placement_group


def _record_file(train_storage: str, trial_id: str) -> Path:
    return Path(train_storage) / f"{trial_id}.placement-groups"


def record_placement_group(train_storage: str, trial_id: str) -> None:
    """On a worker: note the placement group it runs in, under its trial."""
    from ray.util import get_current_placement_group

    group = get_current_placement_group()
    if group is None or not train_storage:
        return
    path = _record_file(train_storage, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as file:
        file.write(group.id.hex() + "\n")
        file.flush()
        os.fsync(file.fileno())


def trial_nodes(own_node: str) -> str:
    """On a worker: the nodes of its placement group, ``own_node`` first, comma-separated.

    Rank 0 reports this as the trial's ``node_id``, so ``sweep.node`` names every node the
    trial trains on: its bundles are the workers' CPUs and GPUs, one per worker."""
    from ray.util import get_current_placement_group, placement_group_table

    group = get_current_placement_group()
    nodes = [own_node]
    if group is not None:
        bundles = placement_group_table(group).get("bundles_to_node_id", {})
        nodes += [str(bundles[index]) for index in sorted(bundles)]
    return ",".join(dict.fromkeys(node for node in nodes if node))


class EndTrainRuns(tune.Callback):
    """Removes the placement groups a distributed trial's Train runs left, as the trial ends."""

    def __init__(self, train_storage: str) -> None:
        self._train_storage = train_storage

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._free(trial.trial_id)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._free(trial.trial_id)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._free(trial.trial_id)  # the retry needs the same resources

    def _free(self, trial_id: str) -> None:
        from ray._raylet import PlacementGroupID  # compat: placement-group-by-id

        path = _record_file(self._train_storage, trial_id)
        try:
            ids = path.read_text(encoding="utf-8").split()
        except OSError:
            return
        for hex_id in ids:
            with contextlib.suppress(Exception):  # removed already (the run ended cleanly): nothing to free
                remove_placement_group(PlacementGroup(PlacementGroupID(bytes.fromhex(hex_id))))
        path.unlink(missing_ok=True)
