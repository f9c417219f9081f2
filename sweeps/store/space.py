"""The disk space a sweep's checkpoints take, measured and expected, and the warning before launch.

``sweep check`` measures one checkpoint of the trainable (the bytes of its ``state.pt``)
and records it in ``<storage>/.sweep-check/<name>.json``; ``sweep plan`` multiplies it by
the checkpoints the sweep keeps at once (:func:`expected_checkpoint_bytes`), and ``sweep
run`` / ``sweep resume`` warn before launch when the storage has less free space than
that (a resumed sweep measures its own largest checkpoint instead). ``sweep status``
shows what the checkpoints take now (:func:`sweeps.store.checkpoints.checkpoint_bytes`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from sweeps.spec.models import SweepSpec
from sweeps.store.atomic import write_atomically
from sweeps.store.checkpoints import TrialFiles, checkpoint_bytes
from sweeps.store.disk_errors import free_bytes, human_bytes
from sweeps.store.state import SweepPaths

#: Where ``sweep check`` leaves its measurement, beside the sweeps of a storage folder.
CHECK_FOLDER = ".sweep-check"
#: What a sweep writes besides checkpoints, per trial: its journal lines, study rows and
#: MLflow metrics (a few KiB on the examples); a floor for the estimate, not a bound.
RECORD_BYTES_PER_TRIAL = 64 * 1024


def measurement_file(storage: str | Path, name: str) -> Path:
    return Path(storage).expanduser() / CHECK_FOLDER / f"{name}.json"


def record_checkpoint_size(
    storage: str | Path, name: str, size: int, config: dict[str, object]
) -> Path | None:
    """Keep ``sweep check``'s measurement for ``sweep plan`` and ``sweep run``; None when the
    storage cannot be written (the measurement is still printed)."""
    path = measurement_file(storage, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps({"checkpoint_bytes": size, "config": config}, default=str))
    except OSError:
        return None
    return path


def measured_checkpoint_size(storage: str | Path, name: str) -> int | None:
    """The checkpoint size ``sweep check`` measured for this sweep's name, if it did."""
    try:
        return int(json.loads(measurement_file(storage, name).read_text())["checkpoint_bytes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def planned_concurrency(spec: SweepSpec) -> int:
    """Trials running at once: ``max_concurrent``, or with ``auto`` what this machine's CPUs
    hold (the runner asks the cluster; before launch this machine is the best guess)."""
    if isinstance(spec.max_concurrent, int):
        return min(spec.max_concurrent, spec.num_samples)
    per_trial = spec.resources.cpu * spec.resources.workers
    return max(1, min(spec.num_samples, math.floor((os.cpu_count() or 1) / per_trial)))


@dataclass(frozen=True)
class CheckpointSpace:
    """What a sweep's checkpoints are expected to take at most at once, and why."""

    checkpoint_bytes: int
    checkpoints: int
    total_bytes: int
    concurrency: int

    def describe(self) -> str:
        return (
            f"{human_bytes(self.total_bytes)}: {self.checkpoints} checkpoints of "
            f"{human_bytes(self.checkpoint_bytes)} at most at once"
        )


def expected_checkpoint_bytes(spec: SweepSpec, size: int) -> CheckpointSpace:
    """The most the checkpoints take at once: ``keep`` per running trial, plus the best
    trial's last (with ``keep_pruned``, ``keep`` of every trial: they may all be pruned)."""
    if spec.checkpoint.every_epochs == 0:
        return CheckpointSpace(size, 0, 0, planned_concurrency(spec))
    concurrency = planned_concurrency(spec)
    keep = spec.checkpoint.keep
    count = keep * spec.num_samples if spec.checkpoint.keep_pruned else keep * concurrency + 1
    return CheckpointSpace(size, count, count * size, concurrency)


def space_warning(spec: SweepSpec, storage: Path, files: TrialFiles) -> str | None:
    """A warning when ``storage`` has less free space than the sweep is expected to write
    (``files``: the sweep's trial files, whose largest checkpoint sizes one)."""
    _, _, largest = checkpoint_bytes(files)
    size = largest or measured_checkpoint_size(storage, spec.name)
    if not size:
        return None
    space = expected_checkpoint_bytes(spec, size)
    expected = space.total_bytes + RECORD_BYTES_PER_TRIAL * spec.num_samples
    free = free_bytes(storage)
    if free is None or free >= expected:
        return None
    return (
        f"the storage {storage} has {human_bytes(free)} free, less than this sweep is expected to write "
        f"({human_bytes(expected)}; its checkpoints {space.describe()}, `checkpoint.keep` = "
        f"{spec.checkpoint.keep}). It will stop when the disk is full, resumable once space is freed: "
        "free some space, or lower `checkpoint.keep` or `max_concurrent`."
    )


def planned_checkpoint_space(spec: SweepSpec, files: TrialFiles) -> dict[str, object]:
    """``sweep plan``'s view: the measured checkpoint size (``sweep check``, or this sweep's
    own largest checkpoint when it has run), what the sweep keeps at once, and the free space."""
    storage = Path(spec.storage).expanduser()
    _, _, largest = checkpoint_bytes(files)
    size = largest or measured_checkpoint_size(storage, spec.name)
    free = free_bytes(storage)
    view: dict[str, object] = {
        "checkpoint_bytes": size,
        "keep": spec.checkpoint.keep,
        "keep_pruned": spec.checkpoint.keep_pruned,
        "free_bytes": free,
    }
    if size is not None:
        space = expected_checkpoint_bytes(spec, size)
        view.update(
            expected_checkpoints=space.checkpoints,
            expected_bytes=space.total_bytes,
            concurrency=space.concurrency,
        )
    return view


def checkpoint_plan_line(spec: SweepSpec, files: TrialFiles) -> str:
    """One line for ``sweep plan``: the checkpoint space expected, or how to measure it."""
    if spec.checkpoint.every_epochs == 0:
        return (
            "Checkpoints: none (`checkpoint.every_epochs: 0`): a stopped trial restarts from its beginning."
        )
    view = planned_checkpoint_space(spec, files)
    size, free = view["checkpoint_bytes"], view["free_bytes"]
    keep = (
        f"`checkpoint.keep` = {spec.checkpoint.keep} per running trial; an ended trial keeps none but the "
        "best trial's last"
        f"{' (pruned ones keep theirs: `keep_pruned`)' if spec.checkpoint.keep_pruned else ''}"
    )
    if not isinstance(size, int):
        return (
            f"Checkpoints: {keep}. Their size is not measured yet: `sweep check` measures one, and this "
            "plan then says what the sweep's take."
        )
    space = expected_checkpoint_bytes(spec, size)
    room = f"; {human_bytes(free)} free under {spec.storage}" if isinstance(free, int) else ""
    return f"Checkpoints: at most {space.describe()} ({keep}; {space.concurrency} trials at once){room}."


def checkpoint_status_line(paths: SweepPaths, files: TrialFiles) -> str:
    """One line for ``sweep status``: what the sweep's checkpoints take now, and the free space."""
    count, total, largest = checkpoint_bytes(files)
    free = free_bytes(paths.directory)
    room = f"; {human_bytes(free)} free there" if free is not None else ""
    if not count:
        return f"Checkpoints: none under {paths.ray_directory}{room}."
    return (
        f"Checkpoints: {count} taking {human_bytes(total)} (the largest {human_bytes(largest)}) "
        f"under {paths.ray_directory}{room}."
    )
