"""A short check of distributed trials on a GPU machine (not run in CI, which has no GPU).

Run it on a machine with at least 2 GPUs, from the repository root::

    python -m benchmarks.gpu_check_distributed

It runs one sweep of the DDP probe (``tests/ray_backend/ddp_probe.py``: the digits MLP
through ``fit``, each rank writing down what it did) with ``resources: {cpu: 1, gpu: 1,
workers: 2}`` on an embedded Ray, then checks and prints:

- each rank trained on its own ``cuda:N`` (Ray Train gives each worker one GPU);
- the process group is NCCL (the backend sweeps asks for on GPU workers): the probe's
  trial completing is the check, since DDP's all-reduce of CUDA tensors runs on it;
- the ranks saw every training sample once in the epoch.

Not covered, and why: fractional ``gpu`` with ``workers > 1`` may place two ranks of one
trial on one GPU, which NCCL refuses (docs/cluster.md, "Distributed trials").
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import yaml


def main() -> int:
    import torch

    gpus = torch.cuda.device_count()
    if gpus < 2:
        print(f"needs 2 GPUs, this machine has {gpus}")
        return 2
    from sweeps.runner.runner import RunOptions, run_sweep
    from sweeps.spec.loading import load_spec
    from trainables.digits_mlp import TRAINING_SIZE

    work = Path(tempfile.mkdtemp(prefix="sweeps-gpu-check-"))
    probe = work / "probe"
    probe.mkdir()
    spec = {
        "name": "gpu-ddp", "trainable": "tests.ray_backend.ddp_probe:train", "metric": "val_accuracy",
        "mode": "max", "num_samples": 1, "trainable_args": {"probe_dir": str(probe)},
        "search_space": {"batch_size": 64, "epochs": 1, "learning_rate": 0.1},
        "scheduler": {"type": "none"}, "resources": {"cpu": 1, "gpu": 1, "workers": 2},
        "storage": str(work / "results"), "tracking": {"enabled": False},
    }
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    summary = run_sweep(load_spec(work / "spec.yaml", []), RunOptions(live=False))
    ranks = sorted((json.loads(p.read_text()) for p in probe.glob("*-rank*.json")), key=lambda r: r["rank"])
    devices = [r["device"] for r in ranks]
    seen = sorted(i for r in ranks for batch in r["batches"] for i in batch)
    checks = {
        "trial completed (DDP over NCCL ran)": summary.trials.get("completed") == 1,
        f"each rank on its own cuda device {devices}": len(set(devices)) == 2 and all(d.startswith("cuda") for d in devices),
        "every sample once per epoch": seen == list(range(TRAINING_SIZE)),
    }
    for name, passed in checks.items():
        print(f"{'ok  ' if passed else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
