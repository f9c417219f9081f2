"""A short check of GPU trials on a GPU machine (not run in CI, which has no GPU).

Run it from the repository root on a machine with one GPU or more::

    python -m benchmarks.gpu_check_distributed

Each check is a real sweep of the DDP probe (``tests/ray_backend/ddp_probe.py``: the
digits MLP through ``fit``, each rank writing down its device, process group backend,
times and batches) on an embedded Ray, and prints ``ok``, ``FAIL`` or ``SKIP``:

- **fractional packing** (1 GPU or more): two single-worker trials at ``gpu: 0.5`` run at
  the same time on the same ``cuda`` device;
- **NCCL, cuda:N per worker** (2 GPUs or more): one trial at ``{gpu: 1, workers: 2}``
  runs each rank on its own ``cuda`` device, on an NCCL process group, and the ranks
  together see every training sample once in the epoch.

A fractional ``gpu`` with ``workers > 1`` is refused before launch (docs/cluster.md,
"Distributed trials"), so it is not a case here. Exit status: 0 when every check that
could run passed, 1 when one failed, 2 without a GPU.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

PROBE = str(Path(__file__).resolve().parents[1] / "tests" / "ray_backend" / "ddp_probe.py") + ":train"


def _sweep(
    name: str, resources: dict[str, Any], num_samples: int
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Run the probe; return the trial counts and every rank's record."""
    from sweeps.ray_backend import RayBackend
    from sweeps.runner.runner import RunOptions, run_sweep
    from sweeps.spec.loading import load_spec

    work = Path(tempfile.mkdtemp(prefix=f"sweeps-gpu-{name}-"))
    probe = work / "probe"
    probe.mkdir()
    spec = {
        "name": name,
        "trainable": PROBE,
        "metric": "val_accuracy",
        "mode": "max",
        "num_samples": num_samples,
        "trainable_args": {"probe_dir": str(probe)},
        "max_concurrent": num_samples,
        "search_space": {
            "batch_size": 64,
            "epochs": 3,
            "learning_rate": {"type": "float", "low": 0.05, "high": 0.1},
        },
        "scheduler": {"type": "none"},
        "resources": resources,
        "storage": str(work / "results"),
        "tracking": {"enabled": False},
    }
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    summary = run_sweep(load_spec(work / "spec.yaml", []), RunOptions(RayBackend(), live=False))
    records = [json.loads(p.read_text()) for p in probe.glob("*-rank*.json")]
    return summary.trials, records


def check_fractional_packing() -> dict[str, bool]:
    trials, records = _sweep("gpu-packing", {"cpu": 1, "gpu": 0.5}, num_samples=2)
    devices = {r["device"] for r in records}
    first_end = min(r["ended"] for r in records)
    overlapping = len(records) == 2 and max(r["started"] for r in records) < first_end
    return {
        "two trials at gpu: 0.5 completed": trials.get("completed") == 2,
        f"both on one cuda device {sorted(devices)}": len(devices) == 1
        and next(iter(devices)).startswith("cuda"),
        "the two trials ran at the same time": overlapping,
    }


def check_nccl_per_worker_devices() -> dict[str, bool]:
    from trainables.digits_mlp import TRAINING_SIZE

    trials, records = _sweep("gpu-ddp", {"cpu": 1, "gpu": 1, "workers": 2}, num_samples=1)
    ranks = sorted(records, key=lambda r: r["rank"])
    devices = [r["device"] for r in ranks]
    epoch = [i for r in ranks for batch in r["batches"][-23:] for i in batch]  # the last epoch's 23 batches
    return {
        "the 2-worker trial completed": trials.get("completed") == 1,
        f"process group backend {[r['backend'] for r in ranks]} is nccl": [r["backend"] for r in ranks]
        == ["nccl"] * 2,
        f"each rank on its own cuda device {devices}": len(set(devices)) == 2
        and all(d.startswith("cuda") for d in devices),
        "every sample once per epoch": sorted(epoch) == list(range(TRAINING_SIZE)),
    }


def main() -> int:
    import torch

    gpus = torch.cuda.device_count()
    print(f"{gpus} GPU(s): {[torch.cuda.get_device_name(i) for i in range(gpus)]}")
    if gpus < 1:
        return 2
    results = check_fractional_packing()
    if gpus >= 2:
        results.update(check_nccl_per_worker_devices())
    else:
        print("SKIP NCCL and cuda:N per worker: needs 2 GPUs")
    for name, passed in results.items():
        print(f"{'ok  ' if passed else 'FAIL'} {name}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
