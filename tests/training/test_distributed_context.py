"""The data-parallel parts of the contract without Ray: shards, rank 0's reports, uneven batches."""

from __future__ import annotations

import warnings

import pytest
import torch

from sweeps.iterations import TrialShape
from sweeps.training.context import LocalContext
from sweeps.training.loop import _batches_per_epoch


def context(world_size: int, rank: int, shape: TrialShape | None = None) -> LocalContext:
    return LocalContext(shape or TrialShape(100, 10, 1), metric="m", world_size=world_size, rank=rank)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [64, 31, 30, 3, 1])
def test_the_shards_of_a_batch_are_its_samples_in_order_once(world_size: int, size: int) -> None:
    indices = list(range(100, 100 + size))
    shards = [context(world_size, rank).shard(indices) for rank in range(world_size)]
    assert [i for shard in shards for i in shard] == indices
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_a_single_worker_takes_the_whole_batch() -> None:
    batch = torch.arange(7)
    assert torch.equal(context(1, 0).shard(batch), batch)


def test_reports_from_other_ranks_are_ignored_with_one_warning() -> None:
    ctx = context(2, 1)
    ctx.save_checkpoint({"weights": 1})
    with pytest.warns(UserWarning, match=r"rank 1 of 2 .* only rank 0's reports count"):
        ctx.report(iteration=5, m=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second report warns no more
        ctx.report(iteration=10, m=0.6)
    assert ctx.results == [] and ctx.checkpoints == []


def test_rank_0_reports_and_checkpoints() -> None:
    ctx = context(2, 0)
    ctx.save_checkpoint({"weights": 1})
    ctx.report(iteration=10, m=0.6)
    assert [r["iteration"] for r in ctx.results] == [10] and ctx.checkpoints == [(10, {"weights": 1})]


def test_an_uneven_short_batch_weights_each_share_by_its_size() -> None:
    # N = 71, batch 20: batches of 20, 20, 20, 11; the 11 split 6 + 5 between two workers.
    inputs, targets = torch.arange(71.0).unsqueeze(1), torch.arange(71)
    shape = TrialShape(71, 20, 1)
    per_rank = []
    for rank in range(2):
        batches = _batches_per_epoch(
            (inputs, targets), 20, False, torch.device("cpu"), context(2, rank, shape)
        )
        per_rank.append(list(batches(torch.Generator().manual_seed(3))))
    assert [len(x) for x, _, _ in per_rank[0]] == [10, 10, 10, 6]
    assert [len(x) for x, _, _ in per_rank[1]] == [10, 10, 10, 5]
    # DDP averages the two mean losses: weighted by share * 2 / 11, their average is the mean over 11.
    assert [w for _, _, w in per_rank[0]] == [1.0, 1.0, 1.0, 12 / 11]
    assert [w for _, _, w in per_rank[1]] == [1.0, 1.0, 1.0, 10 / 11]
    seen = sorted(int(t) for rank in per_rank for _, targets_, _ in rank for t in targets_)
    assert seen == list(range(71))  # every sample once in the epoch


def test_the_dataset_path_shards_too() -> None:
    data = torch.utils.data.TensorDataset(torch.arange(30.0).unsqueeze(1), torch.arange(30))
    seen = []
    for rank in range(3):
        batches = _batches_per_epoch(
            data, 12, False, torch.device("cpu"), context(3, rank, TrialShape(30, 12, 1))
        )
        shares = list(batches(torch.Generator().manual_seed(0)))
        assert [len(x) for x, _, _ in shares] == [4, 4, 2]
        seen += [int(t) for _, targets, _ in shares for t in targets]
    assert sorted(seen) == list(range(30))
