import math

import pytest
import torch

from data.config import DataConfig
from data.masking import fixed_eval_grid
from models.autoencoder import Autoencoder
from tests.conftest import tiny_model
from trainers.config import TrainConfig
from trainers.loop import step_points
from trainers.steps import (
    NO_BAD_STEP,
    Diverged,
    DivergenceGuard,
    Shard,
    TooFewImages,
    epoch_plan,
    epoch_seed,
    evaluate,
    first_bad_step,
    seed_everything,
    train_epoch,
)

CPU = torch.device("cpu")
SMALL = tiny_model(bottleneck="vq")


def images(n=32):
    torch.manual_seed(123)
    return (torch.rand(n, 3, 16, 16) * 255).to(torch.uint8)


def train(seed: int, epochs: int = 1, data=None):
    seed_everything(seed)
    model = Autoencoder(SMALL)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    cfg = DataConfig(resolution=16)
    losses = []
    for epoch in range(epochs):
        generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        losses.append(train_epoch(model, optimizer, data, cfg, 8, generator, CPU).mean)
    return model, losses


def test_same_seed_repeats_the_run_exactly_and_another_seed_does_not():
    data = images()
    a, loss_a = train(0, data=data)
    b, loss_b = train(0, data=data)
    _, loss_c = train(1, data=data)
    assert loss_a == loss_b
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert loss_a != loss_c


def test_an_unseeded_run_is_not_identical():
    """The identity checks can fail: without seeding, init and masks differ between runs."""
    from trainers.audit import weights_hash

    data = images()
    seeded, _ = train(0, data=data)
    torch.manual_seed(12345)  # what an unseeded process starts from is arbitrary
    model = Autoencoder(SMALL)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    train_epoch(model, optimizer, data, DataConfig(resolution=16), 8, torch.Generator(), CPU)
    assert weights_hash(model) != weights_hash(seeded)


def test_an_epoch_keeps_each_steps_mean_loss_for_the_loss_curve():
    seed_everything(0)
    model = Autoencoder(SMALL)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sums = train_epoch(
        model, optimizer, images(30), DataConfig(resolution=16), 8, torch.Generator(), CPU
    )
    assert len(sums.step_means) == 3 and sums.count == 24  # 8, 8, 8; the last 6 are dropped
    assert sum(m * 8 for m in sums.step_means) == pytest.approx(sums.loss, rel=1e-5)
    points = step_points(sums.step_means, epoch=2, cfg=TrainConfig(log_every=2))
    assert points == [[8, sums.step_means[1]]]  # global steps: epoch 2 (0-based) starts at 7


def test_training_lowers_the_loss():
    _, losses = train(0, epochs=6, data=images(64))
    assert losses[-1] < 0.8 * losses[0]


def test_eval_loss_is_exact_mean_over_images_whatever_the_batch_size():
    model, _ = train(0, data=images())
    data, cfg = images(20), DataConfig(resolution=16)
    keep = fixed_eval_grid(20, 8, 0.5, seed=0)
    whole, _ = evaluate(model, data, keep, cfg, 20, CPU)
    sliced, _ = evaluate(model, data, keep, cfg, 3, CPU)
    assert whole.count == sliced.count == 20
    assert abs(whole.mean - sliced.mean) < 1e-6
    again, _ = evaluate(model, data, keep, cfg, 7, CPU)
    assert again.mean == sliced.mean or abs(again.mean - sliced.mean) < 1e-6


def diverging(data, guard):
    """lr 1e6 makes AdamW's first update blow the weights up: the second loss is NaN."""
    seed_everything(0)
    model = Autoencoder(SMALL)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e6)
    generator = torch.Generator().manual_seed(0)
    cfg = DataConfig(resolution=16)
    try:
        return train_epoch(model, optimizer, data, cfg, 4, generator, CPU, guard)
    finally:
        steps = optimizer.state[next(model.parameters())]["step"]
        diverging.steps_taken = int(steps)


def test_divergence_stops_the_epoch_within_the_check_interval_and_names_the_step():
    data = images(32)  # 8 steps of 4
    with pytest.raises(Diverged, match=r"diverged at epoch 3, step 2: training loss is not fin"):
        diverging(data, DivergenceGuard(3, every=1))
    assert diverging.steps_taken == 2  # stopped at once, not after the epoch
    with pytest.raises(Diverged, match="step 2"):
        diverging(data, DivergenceGuard(3, every=50))  # checked at the epoch's end
    assert diverging.steps_taken == 8
    assert math.isnan(diverging(data, None).mean)  # the check can fail: unguarded, NaN trains on


def test_first_bad_step_and_agreement_across_ranks():
    finite, nan = torch.tensor(1.0), torch.tensor(float("nan"))
    assert first_bad_step([finite, finite]) == NO_BAD_STEP
    assert first_bad_step([finite, torch.tensor(float("inf")), nan]) == 2
    # another rank saw a NaN first: this rank stops at that check too
    with pytest.raises(Diverged, match="step 1"):
        DivergenceGuard(1, every=1, agree=lambda step: min(step, 1)).check([finite], last=False)


def test_every_rank_runs_the_same_steps_and_the_global_batches_match_any_world_size():
    cfg = DataConfig(resolution=16)
    one = epoch_plan(129, cfg, 64, torch.Generator().manual_seed(3), Shard(0, 1))
    two = [epoch_plan(129, cfg, 32, torch.Generator().manual_seed(3), Shard(r, 2)) for r in (0, 1)]
    assert one[0].shape == (2, 64) and all(order.shape == (2, 32) for order, _ in two)
    for step in range(2):  # the same images, with the same masks, in every global batch
        assert torch.equal(torch.cat([two[0][0][step], two[1][0][step]]), one[0][step])
        assert torch.equal(torch.cat([two[0][1][step], two[1][1][step]]), one[1][step])
    seen = torch.cat([order.flatten() for order, _ in two])
    assert len(set(seen.tolist())) == 128  # no image twice; one of 129 dropped this epoch


def test_each_epoch_reshuffles_the_whole_split_across_ranks():
    cfg = DataConfig(resolution=16)
    first, second = (
        set(
            epoch_plan(64, cfg, 8, torch.Generator().manual_seed(seed), Shard(0, 2))[0]
            .flatten()
            .tolist()
        )
        for seed in (epoch_seed(0, 0), epoch_seed(0, 1))
    )
    assert first != second  # rank 0 does not keep a fixed slice


def test_fewer_images_than_a_global_batch_is_a_clear_error():
    with pytest.raises(TooFewImages, match="the train split has 50 images, fewer than one global"):
        epoch_plan(50, DataConfig(resolution=16), 32, torch.Generator(), Shard(1, 2))


def test_dropout_masks_repeat_per_seed_and_epoch_whatever_ran_before():
    from trainers.steps import seed_epoch_globals

    dropout = torch.nn.Dropout(0.5)
    ones = torch.ones(64)
    seed_epoch_globals(7, 2)
    first = dropout(ones)
    torch.rand(1000)  # another history of draws, as a run resumed from a checkpoint has
    seed_epoch_globals(7, 2)
    assert torch.equal(dropout(ones), first)
    seed_epoch_globals(7, 3)
    assert not torch.equal(dropout(ones), first)


def test_each_rank_draws_dropout_masks_of_its_own_and_rank_0_those_of_one_worker():
    from trainers.steps import GLOBAL_STREAM, epoch_seed, seed_epoch_globals

    dropout = torch.nn.Dropout(0.5)
    ones = torch.ones(256)
    masks = []
    for rank in range(3):
        seed_epoch_globals(7, 2, rank)
        masks.append(dropout(ones))
    assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])
    torch.manual_seed(epoch_seed(7, 2, GLOBAL_STREAM))  # the single worker's stream, as before
    assert torch.equal(dropout(ones), masks[0])


@pytest.mark.parametrize(("batches", "checks"), [(4, 2), (5, 3)])
def test_a_streamed_pass_agrees_once_per_check_never_twice_at_its_end(batches, checks):
    """Each check is a collective across ranks: 4 batches checked every 2 are 2 checks, not a
    third at the end over the same losses; 5 need the end's."""
    from trainers.steps import train_batches

    agreed = []
    guard = DivergenceGuard(1, every=2, agree=lambda step: agreed.append(step) or step)
    model = Autoencoder(SMALL)
    optimizer = torch.optim.AdamW(model.parameters())
    data = images(4 * batches)
    stream = (data[i : i + 4] for i in range(0, len(data), 4))
    generator = torch.Generator().manual_seed(0)
    train_batches(model, optimizer, stream, DataConfig(resolution=16), generator, CPU, guard)
    assert len(agreed) == checks
