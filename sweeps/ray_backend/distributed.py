"""A distributed trial: the Tune trial runs a Ray Train ``TorchTrainer``, whose workers run the trainable.

This is the pattern of Ray's guide "Hyperparameter Tuning with Ray Tune" (Train V2, the
default in Ray 2.60): a Tune function trainable builds a ``TorchTrainer`` of
``resources.workers`` workers of ``cpu``/``gpu`` each (process group on gloo for CPU
workers, NCCL for GPU ones) and waits for it. What differs is how results travel:

- The guide's ``TuneReportCallback`` forwards ``ray.train.report`` calls, which are a
  collective: every rank must call it, the same number of times, or training hangs. Our
  contract lets any rank call ``ctx.report`` (only rank 0's count), so rank 0 alone
  sends its reports to the Tune trial through a :class:`ReportRelay`, batched exactly as
  a single-worker trial's are (:mod:`sweeps.training.batching`), and waits until the
  trial has passed them to Tune: ASHA decides at a rung while the workers wait, as for
  a single worker.
- A checkpoint goes to Tune (``tune.report(checkpoint=...)``), not to Ray Train's own
  storage, so retries, `sweep stop` and `sweep resume` restart a distributed trial from
  its last checkpoint the way they restart any trial; every worker loads it.

The Tune trial itself only waits and relays: it asks for no CPU (on 2 CPUs, two 1-CPU
workers fit, and a 1-CPU driver on top would never start), only a token amount of
memory, since Ray refuses an actor asking for nothing. Ray Train's controller takes no
CPU either. The runner caps concurrency at the trials whose workers all fit
(:mod:`sweeps.backend.resources`), so no trial waits for workers while holding a slot
(ray-project/ray#54305), and the backend does not reuse a distributed trial's actor:
when ASHA or a stop ends the trial, Ray kills its actor, and with it (fate sharing) the
controller and the workers; their placement group, which outlives them, is removed by
the driver (:mod:`sweeps.ray_backend.train_runs`).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray import tune

from sweeps.ray_backend.train_runs import record_placement_group, trial_nodes
from sweeps.ray_backend.worker import (
    RayTrialContext,
    TrialSettings,
    add_pythonpath,
    report_to_tune,
    run_trainable,
    trial_output_folder,
    worker_context,
)
from sweeps.store.trial_output import captured_output
from sweeps.training.context import TrialDiverged

#: Seconds the Tune trial waits for a report before it checks whether training ended.
_POLL_SECONDS = 0.5


@ray.remote(num_cpus=0)
class ReportRelay:
    """Rank 0's reports on their way to the Tune trial; ``deliver`` returns once Tune took one."""

    def __init__(self) -> None:
        self._items: asyncio.Queue[tuple[dict[str, Any], str | None]] = asyncio.Queue()
        self._taken: asyncio.Queue[bool] = asyncio.Queue()

    async def deliver(self, sent: dict[str, Any], checkpoint: str | None) -> bool:
        await self._items.put((sent, checkpoint))
        return await self._taken.get()

    async def take(self, timeout: float) -> tuple[dict[str, Any], str | None] | None:
        try:
            return await asyncio.wait_for(self._items.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def taken(self) -> None:
        await self._taken.put(True)


@dataclass
class RayTrainWorkerContext(RayTrialContext):
    """The context of one worker of a distributed trial: rank 0 reports through the relay."""

    relay: Any = None

    def _deliver(self, sent: dict[str, Any], checkpoint: str | None) -> None:
        ray.get(self.relay.deliver.remote(sent, checkpoint))

    def prepare_model(self, model: Any) -> Any:
        from ray.train.torch import prepare_model

        # DDP on the process group Ray Train set up (gloo or NCCL), on this worker's device.
        return prepare_model(model)


def make_distributed_trial_function(settings: TrialSettings) -> Callable[[dict[str, Any]], None]:
    def run_distributed_trial(config: dict[str, Any]) -> None:
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer  # compat: train-v2

        trial_id = tune.get_context().get_trial_id()
        relay = ReportRelay.remote()  # type: ignore[attr-defined]  # ray.remote adds .remote
        use_gpu = settings.gpus > 0
        trainer = TorchTrainer(
            _worker_function(settings),
            train_loop_config={
                "config": dict(config),
                "trial_id": trial_id,
                "relay": relay,
                "checkpoint": tune.get_checkpoint(),
                # Each worker keeps its output in the Tune trial's folder (trial_output.py).
                "trial_dir": trial_output_folder(settings, trial_id),
            },
            scaling_config=ScalingConfig(
                num_workers=settings.workers,
                use_gpu=use_gpu,
                resources_per_worker={"CPU": settings.cpus, **({"GPU": settings.gpus} if use_gpu else {})},
                # One node when the workers fit on one (no network between them), several when not.
                placement_strategy="PACK",
            ),
            torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
            run_config=RunConfig(
                # A fresh name per attempt: a retry restarts from Tune's checkpoint, not Train's.
                name=f"{trial_id}-{uuid.uuid4().hex[:6]}",
                storage_path=settings.train_storage or None,
                # A worker that dies fails the attempt; Tune retries the trial with all its workers.
                failure_config=FailureConfig(max_failures=0),
            ),
        )
        relay_reports(trainer, relay)

    return run_distributed_trial


def relay_reports(trainer: Any, relay: Any) -> None:
    """Run ``trainer`` in a thread and pass rank 0's reports to Tune until it ends."""
    failure: list[BaseException] = []

    def train() -> None:
        try:
            trainer.fit()
        except BaseException as exc:  # noqa: BLE001  # re-raised on the trial's thread below
            failure.append(exc)

    thread = threading.Thread(target=train, name="sweeps-train-run", daemon=True)
    thread.start()
    while True:
        alive = thread.is_alive()
        item = ray.get(relay.take.remote(_POLL_SECONDS if alive else 0.0))
        if item is None:
            if not alive:
                break
            continue
        sent, checkpoint = item
        report_to_tune(sent, checkpoint)
        relay.taken.remote()
    thread.join()
    if failure:
        error = _worker_error(failure[0])
        if isinstance(error, TrialDiverged):
            return  # rank 0 reported the diverged result; ending normally lets the sweep go on
        raise error


def _worker_error(error: BaseException) -> BaseException:
    """The error a worker raised (rank 0's first), rather than Ray Train's wrapper of it, so
    that the trial's error reads as for a single worker (and a contract error is seen as one)."""
    failures = getattr(error, "worker_failures", None)
    if isinstance(failures, dict) and failures:
        cause = failures.get(0) or next(iter(failures.values()))
        if isinstance(cause, BaseException):
            return cause
    return error


def _worker_function(settings: TrialSettings) -> Callable[[dict[str, Any]], None]:
    def run_worker(loop_config: dict[str, Any]) -> None:
        import ray.train
        import ray.train.torch

        from sweeps.training.registry import resolve_trainable

        add_pythonpath(settings)
        config = loop_config["config"]
        train_context = ray.train.get_context()
        device = ray.train.torch.get_device() if settings.gpus > 0 else None
        ctx = worker_context(
            RayTrainWorkerContext,
            settings,
            config,
            loop_config["trial_id"],
            # Each worker's own GPU (cuda:N), as Ray Train assigned it.
            device=str(device) if device is not None else "cpu",
            node_id=ray.get_runtime_context().get_node_id(),
            restored=loop_config["checkpoint"],
            # Checkpoints go under the sweep's folder, not this node's /tmp: the Tune trial
            # that hands them to Tune may run on another node (the sweep's storage is
            # shared, as Tune needs).
            staging=os.path.dirname(settings.stop_file) if settings.stop_file else None,
            world_size=train_context.get_world_size(),
            rank=train_context.get_world_rank(),
            relay=loop_config["relay"],
        )
        if ctx.rank == 0:
            record_placement_group(settings.train_storage, loop_config["trial_id"])
            ctx.node_id = trial_nodes(ctx.node_id)
        resolved = resolve_trainable(settings.trainable, source="trial")
        with captured_output(loop_config.get("trial_dir"), ctx.rank):
            # TrialDiverged is raised, not returned: rank 0 stopping alone would leave the other
            # ranks waiting in DDP's all-reduce; a failed worker makes Ray Train end them all.
            # Only rank 0's end is checked: the other ranks report nothing, by design.
            run_trainable(resolved.function, config, ctx, check=ctx.rank == 0)

    return run_worker
