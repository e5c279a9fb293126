"""Single-device training and evaluation steps, free of Ray so unit tests can run them."""

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from data.config import DataConfig
from trainers.fastpath import PLAIN, FastPath
from trainers.objectives import objective
from trainers.transfer import to_device, to_unit  # noqa: F401 (re-exported: callers' import)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, *more: int) -> int:
    """Independent, reproducible stream per (seed, epoch), the same on every rank (each takes
    its slice of the global batches): a resume repeats the same epochs. `more` (a rank) gives
    each streamed worker a stream of its own."""
    return int(np.random.SeedSequence([seed, epoch, *more]).generate_state(1)[0])


# epoch_seed's last key for torch's global generator: apart from every rank's own stream
GLOBAL_STREAM = 2**32 - 1


def seed_epoch_globals(seed: int, epoch: int, rank: int = 0) -> None:
    """Reseed torch's global generator, which dropout draws from, per (seed, epoch, rank): a
    trial resumed from a checkpoint redoes its epochs with the same dropout masks as a run that
    was never interrupted (the generator's state is not in the checkpoint), and each rank of a
    data-parallel trial draws masks of its own for its own images (rank 0 keeps the stream a
    single worker has, so single-worker results do not move)."""
    torch.manual_seed(epoch_seed(seed, epoch, GLOBAL_STREAM, *([rank] if rank else [])))


def set_deterministic(enabled: bool) -> None:
    """The determinism switch for the placement probe; cuBLAS needs its workspace env too."""
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def resident(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The train split on the GPU as uint8 when it fits in half its free memory: batches are
    then gathered, converted and masked there, with no host copy per step."""
    if device.type != "cuda":
        return images
    free, _ = torch.cuda.mem_get_info(device)
    return images.to(device) if images.nbytes <= free // 2 else images


@dataclass
class Sums:
    """Loss sums over images, reduced across workers before division, so means are exact."""

    loss: float = 0.0
    count: int = 0
    step_means: list[float] = field(default_factory=list)  # this rank's per-step mean losses

    @property
    def mean(self) -> float:
        return self.loss / max(self.count, 1)


def draw_keep(n: int, cfg: DataConfig, generator: torch.Generator) -> torch.Tensor:
    """Training masks for n examples, drawn on the host: the same on every device."""
    return objective(cfg).draw_keep(n, cfg, generator)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: torch.Tensor,
    keep: torch.Tensor,
    cfg: DataConfig,
    device: torch.device,
    fast: FastPath = PLAIN,
) -> torch.Tensor:
    """One update on a uint8 batch and its masks; returns the batch's summed per-example loss,
    on device."""
    with fast.autocast_context(device):
        per_image, aux_loss, _ = objective(cfg).loss(model, batch, keep, cfg, device, fast)
    optimizer.zero_grad(set_to_none=True)
    (per_image.mean() + aux_loss).backward()
    optimizer.step()
    return per_image.detach().sum()


class Diverged(RuntimeError):
    """A non-finite training loss: the trial stops with this reason instead of training NaNs."""

    def __init__(self, epoch: int, step: int):
        super().__init__(f"diverged at epoch {epoch}, step {step}: training loss is not finite")
        self.epoch, self.step = epoch, step


NO_BAD_STEP = 2**31 - 1  # "every step so far was finite", as a number MIN can reduce over


def first_bad_step(losses: list[torch.Tensor]) -> int:
    """1-based index of the first non-finite loss, or NO_BAD_STEP; one host sync."""
    if not losses:
        return NO_BAD_STEP
    bad = (~torch.isfinite(torch.stack(losses))).nonzero()
    return int(bad[0, 0]) + 1 if len(bad) else NO_BAD_STEP


@dataclass(frozen=True)
class DivergenceGuard:
    """Checks the losses every `every` steps and at the end of the epoch (not every step, which
    would sync the GPU each time); `agree` makes all data-parallel ranks stop at the same check
    (MIN of their first bad step), so none is left waiting in a collective."""

    epoch: int  # 1-based, for the message
    every: int = 50
    agree: Callable[[int], int] = lambda step: step

    def check(self, losses: list[torch.Tensor], last: bool) -> None:
        if not last and len(losses) % self.every:
            return
        step = self.agree(first_bad_step(losses))
        if step != NO_BAD_STEP:
            raise Diverged(self.epoch, step)


@dataclass(frozen=True)
class Shard:
    """This worker's place among the data-parallel ranks of a trial."""

    rank: int = 0
    world: int = 1


class TooFewImages(ValueError):
    """Fewer training images than one global batch: an epoch would have no step."""


def steps_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
    """Full global batches of batch_size x world in n images; none is an error."""
    steps = n // (batch_size * world)
    if steps == 0:
        raise TooFewImages(
            f"the train split has {n} images, fewer than one global batch of "
            f"{batch_size * world} (resources.workers {world} x train.batch_size {batch_size}): "
            "lower train.batch_size or use more images (data.limit)"
        )
    return steps


def epoch_plan(
    n: int, cfg: DataConfig, batch_size: int, generator: torch.Generator, shard: Shard = Shard()
) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's image indices (steps, batch) and masks (steps, batch, 1, g, g) for one epoch.

    Every rank draws the same global order and masks from the same generator (DistributedSampler
    style) and takes its slice of each global batch of batch x world images, so a seed gives the
    same global batches, with the same masks, on any number of workers that divides it. The last
    partial global batch is dropped: every rank then runs the same number of steps (an extra
    step on one rank would wait forever in DDP's all-reduce), and no image is seen twice in an
    epoch, which padding would do; the dropped images (fewer than one global batch) are
    another random few each epoch."""
    global_batch = batch_size * shard.world
    steps = steps_per_epoch(n, batch_size, shard.world)
    order = torch.randperm(n, generator=generator)[: steps * global_batch]
    keep = draw_keep(steps * global_batch, cfg, generator)
    mine = order.view(steps, shard.world, batch_size)[:, shard.rank]  # (steps, batch)
    my_keep = keep.view(steps, shard.world, batch_size, *keep.shape[1:])[:, shard.rank]
    return mine, my_keep


def train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    cfg: DataConfig,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    guard: DivergenceGuard | None = None,
    fast: FastPath = PLAIN,
    shard: Shard = Shard(),
) -> Sums:
    """One shuffled pass over the whole train split `images` (every rank holds all of it and
    trains on its slice of each global batch; see `epoch_plan`). Order and masks come from
    generator, so a seed repeats the epoch. With a guard, a non-finite loss raises `Diverged`
    within `guard.every` steps."""
    model.train()
    order, keep = epoch_plan(len(images), cfg, batch_size, generator, shard)
    # Drawn on the host, copied once: each step then gathers its batch where the images live,
    # with no index or mask copy per step.
    order, keep = to_device(order, images.device), to_device(keep, device)
    losses = []
    for step in range(len(order)):
        batch = images[order[step]]
        losses.append(train_step(model, optimizer, batch, keep[step], cfg, device, fast))
        if guard is not None:
            guard.check(losses, last=step == len(order) - 1)
    stacked = torch.stack(losses)  # read back once per epoch, not per step
    sums = stacked.tolist()
    return Sums(sum(sums), len(order) * batch_size, [total / batch_size for total in sums])


def train_batches(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[torch.Tensor],
    cfg: DataConfig,
    generator: torch.Generator,
    device: torch.device,
    guard: DivergenceGuard | None = None,
    fast: FastPath = PLAIN,
) -> Sums:
    """One pass over streamed uint8 batches (this rank's share of the epoch, already shuffled);
    each batch's masks are drawn from `generator` as it arrives."""
    model.train()
    losses, seen = [], 0
    for batch in batches:
        keep = draw_keep(len(batch), cfg, generator)
        losses.append(train_step(model, optimizer, batch, keep, cfg, device, fast))
        seen += len(batch)
        if guard is not None:
            guard.check(losses, last=False)
    if guard is not None and len(losses) % guard.every:  # else the loop's check was the last
        guard.check(losses, last=True)
    sums = torch.stack(losses).tolist() if losses else []
    size = seen // max(len(losses), 1)
    return Sums(sum(sums), seen, [total / size for total in sums])


def train_steps(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    cfg: DataConfig,
    batch_size: int,
    steps: int,
    generator: torch.Generator,
    device: torch.device,
) -> Sums:
    """Exactly `steps` updates, reshuffling whenever the images run out (few-shot fine-tunes)."""
    model.train()
    losses, seen, order = [], 0, torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        if len(order) == 0:
            order = torch.randperm(len(images), generator=generator)
        batch, order = order[:batch_size], order[batch_size:]
        batch = images[to_device(batch, images.device)]
        keep = draw_keep(len(batch), cfg, generator)
        losses.append(train_step(model, optimizer, batch, keep, cfg, device))
        seen += len(batch)
    total = torch.stack(losses).sum().item() if losses else 0.0
    return Sums(total, seen)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    images: torch.Tensor,
    keep_grid: torch.Tensor,
    cfg: DataConfig,
    batch_size: int,
    device: torch.device,
    fast: FastPath = PLAIN,
) -> tuple[Sums, dict[str, float]]:
    """Loss sums on fixed masks, and the bottleneck's stats averaged over batches."""
    model.eval()
    losses, stats_sums = [], {}
    for start in range(0, len(images), batch_size):
        batch, keep = images[start : start + batch_size], keep_grid[start : start + batch_size]
        with fast.autocast_context(device):
            per_image, _, stats = objective(cfg).loss(model, batch, keep, cfg, device, fast)
        losses.append(per_image.sum())
        for key, value in stats.items():
            stats_sums[key] = stats_sums.get(key, 0.0) + value
    batches = max(1, -(-len(images) // batch_size))
    stats = {key: float(value) / batches for key, value in stats_sums.items()}
    total = torch.stack(losses).sum().item() if losses else 0.0
    return Sums(total, len(images)), stats
