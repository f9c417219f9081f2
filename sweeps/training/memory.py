"""The peak memory of a stretch of code in this process: resident set, and the GPU's if used.

``sweep check`` reports what one trial needs, so the peak must be the trial's, not the
process's lifetime peak (which includes importing torch). On Linux, writing ``5`` to
``/proc/self/clear_refs`` resets the kernel's peak-RSS mark (``VmHWM``), so the mark read
afterwards is the peak since then. Where that is not possible, the lifetime peak of
:func:`resource.getrusage` is reported instead, and no growth.
"""

from __future__ import annotations

import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_bytes(key: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024  # the kernel writes kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _lifetime_peak_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


class PeakMemory:
    """Watch the peak memory from construction until :meth:`measure`.

    Example::

        watch = PeakMemory("cpu")
        train(config, ctx)
        peak, growth, gpu_peak = watch.measure()
    """

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.before = _status_bytes("VmRSS")
        try:
            _CLEAR_REFS.write_text("5")
            self.reset = True
        except OSError:
            self.reset = False
        if device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(device)

    def measure(self) -> tuple[int | None, int | None, int | None]:
        """(peak RSS bytes, peak minus the RSS at the start, GPU peak bytes); None where unknown."""
        peak = _status_bytes("VmHWM") if self.reset else None
        growth = None if peak is None or self.before is None else max(0, peak - self.before)
        if peak is None:
            peak = _lifetime_peak_bytes()
        gpu = None
        if self.device.startswith("cuda"):
            import torch

            gpu = int(torch.cuda.max_memory_allocated(self.device))
        return peak, growth, gpu
