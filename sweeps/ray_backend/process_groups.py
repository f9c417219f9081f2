"""The embedded Ray's processes in process groups of their own, out of the driver's.

A signal sent to a whole process group reaches every process in it: bash's ``kill %1``,
``kill -TERM -PGID``, a terminal's Ctrl-C. ``ray.init`` starts its GCS, raylet and helpers
as plain children, in the driver's group (the raylet's agents join it too; only the trial
workers get groups of their own). Ray blocks SIGINT in them but not SIGTERM, so a SIGTERM
to the group killed the GCS and the raylet, and with them every trial, at the moment the
driver began its graceful stop: nothing could checkpoint, the driver waited 60 s for the
GCS, then exited 1 and left the sweep ``running``.

In groups of their own they get only what the driver passes on, and the driver stops the
sweep as for a SIGTERM to its pid. They still end with the driver, even by SIGKILL: Ray
starts them with ``prctl(PR_SET_PDEATHSIG)`` on Linux (its "kernel fate sharing"), which
does not depend on the group.

What this does not reach: a SIGTERM to every process of a cgroup (systemd's default
``KillMode=control-group``, Slurm's ``scancel``) still reaches Ray's processes; the cure
there is to signal the driver alone (``KillMode=mixed``; ``sbatch --signal=B:TERM``), see
``docs/reliability.md``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def ray_processes_in_their_own_groups() -> Iterator[None]:
    """While active, every process Ray's ``start_ray_process`` starts calls ``setpgrp()``."""
    from ray._private import services  # compat: ray-process-popen

    original = services.ConsolePopen

    class InItsOwnGroup(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["preexec_fn"] = _in_own_group_then(kwargs.get("preexec_fn"))
            super().__init__(*args, **kwargs)

    services.ConsolePopen = InItsOwnGroup  # type: ignore[misc]
    try:
        yield
    finally:
        services.ConsolePopen = original  # type: ignore[misc]


def _in_own_group_then(preexec_fn: Callable[[], Any] | None) -> Callable[[], None]:
    # Runs in the child between fork and exec, before Ray's own preexec (its SIGINT block
    # and the parent-death signal); Python 3.10 has no Popen(process_group=...).
    def preexec() -> None:
        os.setpgrp()
        if preexec_fn is not None:
            preexec_fn()

    return preexec
