"""``limits``: what the whole sweep may spend, in iterations, samples or time.

``num_samples`` caps the trials; ``limits`` caps the compute, as Ray Tune's
``time_budget_s`` and W&B's ``run_cap`` do. Any subset may be given::

    limits: {max_iterations: 50000, max_samples: null, max_time: 2h, on_exhausted: drain}

Once one is reached no new trial starts. ``on_exhausted: drain`` (the default) lets the
running trials finish; ``stop`` stops them at their next checkpoint, so the sweep can be
resumed with a raised limit. ``scheduler.budget`` still names the unit ASHA counts in.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*"
    r"(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)
_UNIT_SECONDS = (86400.0, 3600.0, 60.0, 1.0)


def parse_duration(value: float | str) -> float:
    """Seconds in ``value``: a number of seconds, or text such as ``2h``, ``90m``, ``1h30m``, ``45s``."""
    if isinstance(value, bool):
        raise ValueError(f"must be a duration such as `2h`, `90m` or a number of seconds, not {value!r}")  # noqa: TRY004 - pydantic reports only ValueError as a field error
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if match is None or not any(match.groups()):
            raise ValueError(
                f"must be a duration such as `2h`, `90m`, `1h30m`, `45s` or a number of seconds, "
                f"not {value!r}"
            )
        seconds = sum(
            float(part) * unit for part, unit in zip(match.groups(), _UNIT_SECONDS, strict=False) if part
        )
    if seconds <= 0:
        raise ValueError(f"must be a positive duration, not {value!r}")
    return seconds


class LimitsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_iterations: int | None = Field(default=None, ge=1)
    max_samples: int | None = Field(default=None, ge=1)
    #: Seconds of sweep wall time (given as `2h`, `90m`, ... or seconds), resumed runs included.
    max_time: float | None = None
    on_exhausted: Literal["drain", "stop"] = "drain"

    @field_validator("max_time", mode="before")
    @classmethod
    def _duration(cls, value: float | str | None) -> float | None:
        return None if value is None else parse_duration(value)

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_iterations, self.max_samples, self.max_time))
