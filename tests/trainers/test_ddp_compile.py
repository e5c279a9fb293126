"""The fast path under data parallelism, as a multi-worker trial runs it: Ray Train's
`prepare_model` wraps the model in DistributedDataParallel, then the fast path compiles it.

Two real processes on a gloo group (CPU): the compiled DDP model must keep the ranks' weights
identical (its gradients are all-reduced) and train as the eager DDP model does."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from data.config import DataConfig
from models.autoencoder import Autoencoder
from tests.conftest import free_port, tiny_model
from trainers.distributed import all_reduce_batch_means
from trainers.fastpath import PLAIN, FastPath, convert
from trainers.steps import Shard, draw_keep, epoch_seed, seed_everything, train_epoch, train_step

CPU = torch.device("cpu")
SMALL = tiny_model(bottleneck="vq")
DATA = DataConfig(resolution=16)
STEPS = 3


def train(rank: int, fast: FastPath) -> tuple[list[float], torch.Tensor]:
    seed_everything(0)  # the same initial weights on both ranks, as Ray Train's workers have
    bare = Autoencoder(SMALL)
    model = convert(DistributedDataParallel(bare), fast)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(10 + rank)  # each rank its own batches and masks
    losses = []
    for step in range(STEPS):
        pixels = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(rank * 10 + step))
        keep = draw_keep(8, DATA, generator)
        loss = train_step(model, optimizer, (pixels * 255).byte(), keep, DATA, CPU, fast)
        losses.append(loss.item())
    return losses, torch.cat([p.detach().flatten() for p in bare.parameters()])


SPLIT = (torch.rand(40, 3, 16, 16, generator=torch.Generator().manual_seed(7)) * 255).byte()


def epoch_of(model: torch.nn.Module, batch: int, shard: Shard) -> tuple[float, torch.Tensor]:
    """One real epoch of the trial loop's `train_epoch` on SPLIT; this rank's loss sum and the
    final weights."""
    seed_everything(0)
    bare = Autoencoder(SMALL)
    trained = model(bare)
    optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(epoch_seed(0, 0))
    sums = train_epoch(trained, optimizer, SPLIT, DATA, batch, generator, CPU, shard=shard)
    return sums.loss, torch.cat([p.detach().flatten() for p in bare.parameters()])


def worker(rank: int, port: int, results) -> None:
    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        eager = train(rank, PLAIN)
        torch._dynamo.reset()
        compiled = train(rank, FastPath(compile=True))
        epoch = epoch_of(DistributedDataParallel, 8, Shard(rank, 2))
        # rank 0 scored 1 batch of the split with a mean of 1.0, rank 1 scored 2 averaging 4.0
        stats = all_reduce_batch_means({"usage": [1.0, 4.0][rank]}, [1, 2][rank], CPU)
        results[rank] = {"eager": eager, "compiled": compiled, "epoch": epoch, "stats": stats}
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks():
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(worker, args=(free_port(), results), nprocs=2, join=True)
        return dict(results)


def test_compiled_ddp_keeps_the_ranks_weights_identical(ranks):
    for mode in ("eager", "compiled"):
        torch.testing.assert_close(ranks[0][mode][1], ranks[1][mode][1], rtol=0, atol=0)
    assert ranks[0]["eager"][0] != ranks[1]["eager"][0]  # each rank trained on its own batches


def test_two_workers_of_b_train_as_one_worker_of_2b(ranks):
    """The same global batches with the same masks (epoch_plan), and DDP averages the two
    halves' gradients into the full batch's mean gradient: the same training, up to the order
    of float additions (measured here: weights within 5.2e-8 after the epoch's 2 steps, loss
    sums equal to the printed digits)."""
    torch.set_num_threads(1)
    one_loss, one_weights = epoch_of(lambda model: model, 16, Shard(0, 1))
    two_loss = ranks[0]["epoch"][0] + ranks[1]["epoch"][0]
    assert two_loss == pytest.approx(one_loss, rel=1e-6)
    for rank in (0, 1):
        torch.testing.assert_close(ranks[rank]["epoch"][1], one_weights, rtol=0, atol=1e-6)
    seed_everything(0)
    initial = torch.cat([p.detach().flatten() for p in Autoencoder(SMALL).parameters()])
    assert (one_weights - initial).abs().max() > 1e-4  # it trained: the match is not vacuous


def test_compiled_ddp_trains_as_eager_ddp_does(ranks):
    for rank in (0, 1):
        eager, compiled = ranks[rank]["eager"], ranks[rank]["compiled"]
        assert compiled[0] == pytest.approx(eager[0], rel=1e-4)
        torch.testing.assert_close(compiled[1], eager[1], rtol=1e-4, atol=1e-5)


def test_a_splits_statistics_are_its_batches_mean_over_every_rank(ranks):
    # They were rank 0's alone: half the val and test splits under two workers.
    assert ranks[0]["stats"] == ranks[1]["stats"] == {"usage": pytest.approx((1.0 + 2 * 4.0) / 3)}
