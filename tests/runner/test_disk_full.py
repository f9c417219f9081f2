"""A disk that fills while a sweep runs, on a real tmpfs (issue 24, 1 and 2).

Each case mounts a small tmpfs as the storage folder inside a user+mount namespace (no
privileges needed, as tests/cli/test_lifecycle.py's hostile storage), runs `sweep run`
with a listener that fills it at a chosen moment (tests/runner/filling_driver.py), frees
the space and runs `sweep resume`. The tmpfs lives only as long as the namespace, so the
sweep's folder is copied out, and back to the same path for the checks here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, small_spec
from tests.runner.integrity import check_sweep_integrity

SCRIPT = r"""
storage="$1"; out="$2"; spec="$3"; when="$4"; measured="$5"; shift 5
mount -t tmpfs -o size=16m tmpfs "$storage" || exit 90
if [ "$measured" != 0 ]; then  # what `sweep check` would have recorded
  mkdir "$storage/.sweep-check" \
    && echo "{\"checkpoint_bytes\": $measured}" > "$storage/.sweep-check/tiny.json"
fi
"$@" -m tests.runner.filling_driver "$spec" "$when" > "$out/run.out" 2> "$out/run.err"
echo $? > "$out/run.rc"
cp "$storage/tiny/sweep.json" "$out/stopped.json"
ls -a "$storage/tiny" > "$out/files-after-stop"
rm -f "$storage/filler"
"$@" -m sweeps resume tiny --storage "$storage" --json > "$out/resume.out" 2> "$out/resume.err"
echo $? > "$out/resume.rc"
mkdir "$out/storage" && cp -a "$storage"/. "$out/storage"/
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("when", "measured"), [("report:3", 6_000_000), ("end", 0)], ids=["mid-trial", "final-writes"]
)
def test_a_full_disk_stops_the_sweep_resumably_with_one_paragraph(
    tmp_path: Path, when: str, measured: int
) -> None:
    storage, out = tmp_path / "results", tmp_path / "out"
    storage.mkdir()
    out.mkdir()
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(small_spec(storage=str(storage)), sort_keys=False))
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
    done = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            SCRIPT,
            "sh",
            str(storage),
            str(out),
            str(spec),
            when,
            str(measured),
            sys.executable,
        ],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    # The run: exit 2, one paragraph (the path, the error, the space used, the resume
    # command), no traceback, nothing else on stderr; `sweep.json` stopped.
    run_err = (out / "run.err").read_text()
    assert (out / "run.rc").read_text().strip() == "2", run_err[-3000:]
    assert "Traceback" not in run_err and "database or disk is full\n" not in run_err, run_err[-3000:]
    # The start's own lines come first (its first line, then each phase as it began).
    start = [
        line
        for line in run_err.strip().splitlines()
        if line.startswith("Sweep tiny: starting ") or re.fullmatch(r"  .+ \(\+\d+\.\d s\)", line)
    ]
    assert start and start[0].startswith("Sweep tiny: starting "), run_err[-3000:]
    lines = [line for line in run_err.strip().splitlines() if line not in start]
    if measured:  # before launch: (2 per running trial × the trials at once + the best one) × 6 MB > 16 MiB
        warning = " ".join(lines.pop(0).split())
        assert (
            warning.startswith(f"warning: the storage {storage} has") and "checkpoints of 5.7 MiB" in warning
        )
    assert run_err.count("error:") == 1 and len(lines) == 1, run_err[-3000:]
    paragraph = " ".join(run_err.split())
    assert "Sweep `tiny` stopped: a disk it writes to is full or cannot be written" in paragraph
    assert "The sweep has written" in paragraph and str(storage / "tiny") in paragraph
    assert f"sweep resume tiny --storage {storage}" in paragraph and "Its state is `stopped`" in paragraph
    if when == "end":  # the parent run's totals are the first write after the fill
        assert "met in the MLflow store sqlite:///" in paragraph
    assert json.loads((out / "stopped.json").read_text())["state"] == "stopped"
    assert not [f for f in (out / "files-after-stop").read_text().split() if f.startswith(".space-reserve")]

    # Space freed, the sweep resumes to completion with every trial, MLflow run and step.
    resume_err = (out / "resume.err").read_text()
    assert (out / "resume.rc").read_text().strip() == "0", resume_err[-3000:]
    shutil.copytree(out / "storage", storage, dirs_exist_ok=True)
    check_sweep_integrity(storage, "tiny", 6, "val_accuracy")
    # Bounded checkpoints (issue 24, 2): once every trial has ended, only the best one's
    # last checkpoint is left, and the space kept back for a stop is given back.
    best = json.loads((out / "resume.out").read_text())["best"]["trial_id"]
    left = sorted(p.parent.name.split("_")[2] for p in (storage / "tiny" / "ray").glob("*/checkpoint_*"))
    assert left == [best], left
    assert not list((storage / "tiny").glob(".space-reserve*"))
