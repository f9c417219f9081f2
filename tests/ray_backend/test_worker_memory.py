"""A reused worker must not accumulate memory across trials (models, optimizers, data, heap).

Ray reuses one actor for many trials (``reuse_actors=True``). Each trial here records, on
entry, how many torch modules and optimizers are still alive in the worker and its
resident memory. A leaked model or optimizer state from an earlier trial shows in the
first; the 768×768 MLP with Adam is about 28 MB, so one leaked trial also shows in the
second, as does glibc keeping what finished trials freed (about 4.5 MB per trial before
the runner trimmed the heap at each trial start).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TRAINABLE = """
import gc, json, os
import torch
from sweeps import trainable
from trainables.digits_mlp import TRAINING_SIZE, train as digits

@trainable(dataset_size=TRAINING_SIZE)
def train(config, ctx):
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, (torch.nn.Module, torch.optim.Optimizer))]
    with open("/proc/self/statm") as stream:
        rss_mb = int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    with open(ctx.args["log"], "a") as stream:
        stream.write(json.dumps({"pid": os.getpid(), "alive": len(alive), "rss_mb": rss_mb}) + "\\n")
    del alive
    digits(config, ctx)
"""

TRIALS = 12


@pytest.mark.slow
def test_reused_worker_keeps_no_model_optimizer_or_heap_from_earlier_trials(
    ray_session: Any,
    tmp_path: Path,
    write_spec: Callable[..., Path],
) -> None:
    from sweeps.ray_backend import RayBackend
    from sweeps.runner.runner import RunOptions, run_sweep
    from sweeps.spec.loading import load_spec

    (tmp_path / "leaky.py").write_text(TRAINABLE)
    log = tmp_path / "memory.jsonl"
    spec = write_spec(
        trainable=f"{tmp_path / 'leaky.py'}:train",
        trainable_args={"hidden_sizes": [768, 768], "log": str(log)},
        num_samples=TRIALS,
        max_concurrent=1,
        search_space={
            "batch_size": 64,
            "epochs": 1,
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        },
        scheduler={"type": "none"},
        tracking={"enabled": False},
    )
    summary = run_sweep(load_spec(spec), RunOptions(RayBackend(), live=False))
    assert summary.trials["completed"] == TRIALS

    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len({r["pid"] for r in records}) == 1, "the trials did not share one reused worker"
    assert [r["alive"] for r in records] == [0] * TRIALS
    # From the third trial on (the first two warm up torch, the data cache and the allocator).
    growth = records[-1]["rss_mb"] - records[2]["rss_mb"]
    assert growth < 25, [round(r["rss_mb"]) for r in records]
