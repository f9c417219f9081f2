"""`sweep run` whose storage fills up at a chosen moment: ``python -m tests.runner.filling_driver SPEC WHEN``.

``WHEN`` is ``report:N`` (the disk fills as the N-th delivery of reports reaches the
driver, mid-trial: the journal, the study, MLflow and the trials' checkpoints all meet
it) or ``end`` (it fills as the last trial ends, just before the sweep's final writes:
MLflow's totals, the model, ``sweep.json``). The filler is a real file written until the
file system says ENOSPC; run this inside a user+mount namespace on a small tmpfs
(tests/runner/test_disk_full.py). It is the CLI's ``sweep run`` with one more listener,
so it ends as the CLI does: a :class:`~sweeps.errors.SweepError` is one paragraph on
stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sweeps.backend import SweepListener, TrialInfo

FILLER = "filler"


def fill(folder: Path) -> None:
    """Write ``folder/filler`` until the file system is full (what is left is under 4 KiB)."""
    with open(folder / FILLER, "ab", buffering=0) as stream:
        for chunk in (1 << 20, 1 << 16, 1 << 12):
            try:
                while True:
                    stream.write(b"\0" * chunk)
            except OSError:
                continue


class FillTheDisk(SweepListener):
    def __init__(self, storage: Path, when: str) -> None:
        self.storage, self.when = storage, when
        self.deliveries = 0
        self.filled = False

    def trial_reported(self, trial: TrialInfo, points: list[dict[str, Any]]) -> None:
        self.deliveries += 1
        if self.when.startswith("report:") and self.deliveries == int(self.when.split(":")[1]):
            self._fill()

    def sweep_ended(self) -> None:
        if self.when == "end":
            self._fill()

    def _fill(self) -> None:
        if not self.filled:
            self.filled = True
            fill(self.storage)


def main(spec: str, when: str) -> int:
    from rich.console import Console

    from sweeps.cli.launch import end_process, ray_backend, run_and_report
    from sweeps.cli.usage import EXIT
    from sweeps.errors import SweepError
    from sweeps.runner.runner import RunOptions
    from sweeps.spec.loading import load_spec

    loaded = load_spec(Path(spec), [])
    storage = Path(loaded.spec.storage)
    code = 0
    try:
        run_and_report(
            loaded,
            RunOptions(ray_backend(loaded, None), listeners=[FillTheDisk(storage, when)]),
            as_json=True,
        )
    except SweepError as exc:  # as sweeps.cli.main
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        code = 2
    except EXIT as exc:  # the summary's exit code (typer.Exit of the click typer runs on)
        code = int(exc.exit_code)  # type: ignore[attr-defined]
    end_process(code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
