"""The sweep spec: YAML → typed, validated :class:`SweepSpec`."""

from sweeps.spec.loading import LoadedSpec, apply_overrides, load_spec, validate_spec
from sweeps.spec.models import (
    REQUIRED_HYPERPARAMETERS,
    AshaSpec,
    CategoricalParam,
    FloatParam,
    IntParam,
    NoSchedulerSpec,
    SweepSpec,
    possible_values,
)

__all__ = [
    "REQUIRED_HYPERPARAMETERS",
    "AshaSpec",
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "LoadedSpec",
    "NoSchedulerSpec",
    "SweepSpec",
    "apply_overrides",
    "load_spec",
    "possible_values",
    "validate_spec",
]
