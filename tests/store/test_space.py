"""The space a sweep's checkpoints take, measured and expected (sweeps/store/space.py)."""

from __future__ import annotations

from pathlib import Path

from sweeps.ray_backend.formats import RayTrialFiles
from sweeps.spec.loading import validate_spec
from sweeps.spec.models import SweepSpec
from sweeps.store.space import (
    RECORD_BYTES_PER_TRIAL,
    expected_checkpoint_bytes,
    measured_checkpoint_size,
    planned_concurrency,
    record_checkpoint_size,
    space_warning,
)
from tests.conftest import small_spec
from tests.store.test_checkpoints import make_checkpoints


def spec_of(**changes: object) -> SweepSpec:
    return validate_spec(small_spec(**changes), Path("spec.yaml")).spec


def test_the_checkpoints_kept_at_once_are_keep_per_running_trial_plus_the_best() -> None:
    space = expected_checkpoint_bytes(spec_of(max_concurrent=4, checkpoint={"keep": 3}), 1_000)
    assert (space.concurrency, space.checkpoints, space.total_bytes) == (4, 13, 13_000)
    assert (
        expected_checkpoint_bytes(
            spec_of(max_concurrent=4, checkpoint={"keep_pruned": True}), 1_000
        ).checkpoints
        == 12
    )
    assert expected_checkpoint_bytes(spec_of(checkpoint={"every_epochs": 0}), 1_000).total_bytes == 0


def test_auto_concurrency_is_what_this_machines_cpus_hold_and_never_above_num_samples() -> None:
    assert planned_concurrency(spec_of(max_concurrent=50)) == 6  # num_samples
    assert 1 <= planned_concurrency(spec_of(resources={"cpu": 1})) <= 6


def test_the_measurement_of_sweep_check_is_kept_by_sweep_name(tmp_path: Path) -> None:
    assert measured_checkpoint_size(tmp_path, "tiny") is None
    assert record_checkpoint_size(tmp_path, "tiny", 1234, {"batch_size": 64}) is not None
    assert (
        measured_checkpoint_size(tmp_path, "tiny") == 1234
        and measured_checkpoint_size(tmp_path, "other") is None
    )


def test_the_warning_before_launch_comes_only_when_free_space_is_short(tmp_path: Path) -> None:
    spec = spec_of(storage=str(tmp_path), max_concurrent=2)
    assert (
        space_warning(spec, tmp_path, RayTrialFiles(tmp_path / "tiny" / "ray")) is None
    )  # nothing measured: nothing to compare
    record_checkpoint_size(tmp_path, "tiny", 1_000, {})
    assert (
        space_warning(spec, tmp_path, RayTrialFiles(tmp_path / "tiny" / "ray")) is None
    )  # 5 KiB of checkpoints fit anywhere
    record_checkpoint_size(tmp_path, "tiny", 10**17, {})  # 100 PB: no disk here has that
    warning = space_warning(spec, tmp_path, RayTrialFiles(tmp_path / "tiny" / "ray"))
    assert warning is not None and f"the storage {tmp_path} has" in warning
    assert "5 checkpoints of" in warning and "lower `checkpoint.keep` or `max_concurrent`" in warning
    assert RECORD_BYTES_PER_TRIAL > 0


def test_a_resumed_sweep_measures_its_own_largest_checkpoint(tmp_path: Path) -> None:
    spec = spec_of(storage=str(tmp_path), max_concurrent=2)
    record_checkpoint_size(tmp_path, "tiny", 10**17, {})
    make_checkpoints(tmp_path / "tiny" / "ray", "t1", [1], size=500)  # the sweep's own: what counts
    assert space_warning(spec, tmp_path, RayTrialFiles(tmp_path / "tiny" / "ray")) is None
