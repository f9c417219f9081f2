"""Readable MLflow run names built from a trial's config, e.g. ``t007 bs=64 lr=3.2e-03 ep=8``.

Ray's trial ids are opaque hex strings, and the MLflow UI lists runs by name, so a name
that shows the hyperparameters lets a user pick trials out of the list at a glance. The
Ray trial id stays available as the ``sweep.trial_id`` tag.
"""

from __future__ import annotations

from typing import Any

#: The product's hyperparameters come first, under short, fixed abbreviations.
_KNOWN = {"batch_size": "bs", "learning_rate": "lr", "epochs": "ep"}


def run_name(index: int, config: dict[str, Any]) -> str:
    """The name of the ``index``-th trial (1-based) of a sweep.

    Example:
        >>> run_name(7, {"batch_size": 64, "learning_rate": 0.0032, "epochs": 8})
        't007 bs=64 lr=3.2e-03 ep=8'
        >>> run_name(12, {"batch_size": 32, "learning_rate": 0.1, "epochs": 2, "weight_decay": 1e-5})
        't012 bs=32 lr=1.0e-01 ep=2 wd=1.0e-05'
    """
    if index < 1:
        raise ValueError(f"The value of `index` is {index}, but must be `index >= 1`")
    return f"t{index:03d} {short_config(config)}"


def short_config(config: dict[str, Any]) -> str:
    """A config in a few characters: ``bs=64 lr=3.2e-03 ep=8`` (extras by their initials)."""
    parts = []
    labels = _labels([key for key in config if key not in _KNOWN])
    for key in [*(k for k in _KNOWN if k in config), *(k for k in config if k not in _KNOWN)]:
        label = _KNOWN.get(key) or labels[key]
        parts.append(f"{label}={format_value(config[key])}")
    return " ".join(parts)


def format_value(value: Any) -> str:
    """Floats in two significant digits of scientific notation; everything else as is."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:.1e}"


def _labels(keys: list[str]) -> dict[str, str]:
    """Initials for snake_case extras (``weight_decay`` → ``wd``), the full key on a clash."""
    initials = {
        key: "".join(word[0] for word in key.split("_") if word) if "_" in key else key for key in keys
    }
    taken = list(initials.values()) + list(_KNOWN.values())
    return {key: label if taken.count(label) == 1 else key for key, label in initials.items()}
