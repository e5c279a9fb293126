"""Codebook usage stats without bincount or one-hot (sync-free on CUDA), checked against the
textbook definitions, and every bottleneck traced by torch.compile as one graph."""

import pytest
import torch

from models.autoencoder import Autoencoder
from models.bottlenecks import BOTTLENECKS
from models.bottlenecks.base import code_counts, hard_code_stats, soft_code_stats
from tests.conftest import tiny_model

K = 16


def reference(probs: torch.Tensor) -> dict[str, float]:
    """Perplexity of the mean probabilities; share of codes that are some token's argmax."""
    mean = probs.reshape(-1, K).mean(dim=0)
    entropy = -(mean * torch.log(mean.clamp_min(1e-10))).sum()
    chosen = probs.reshape(-1, K).argmax(dim=-1).bincount(minlength=K)
    return {"perplexity": entropy.exp().item(), "code_usage": (chosen > 0).float().mean().item()}


def as_floats(stats: dict[str, torch.Tensor]) -> dict[str, float]:
    return {name: value.item() for name, value in stats.items()}


def test_counts_match_bincount_with_unused_codes_and_repeats():
    indices = torch.tensor([[3, 3, 0], [15, 3, 7]])
    assert (
        code_counts(indices, K).tolist() == torch.bincount(indices.flatten(), minlength=K).tolist()
    )
    assert code_counts(torch.zeros(4, 9, dtype=torch.long), K).tolist() == [36] + [0] * (K - 1)


def test_hard_stats_equal_the_one_hot_definition_exactly():
    indices = torch.randint(0, K // 2, (4, 25), generator=torch.Generator().manual_seed(0))
    one_hot = torch.nn.functional.one_hot(indices, K).float()
    stats = as_floats(hard_code_stats(indices, K))
    assert stats == reference(one_hot)
    assert stats["code_usage"] <= 0.5  # only the lower half of the codes was drawn


def test_soft_stats_average_probabilities_and_count_argmaxes():
    logits = torch.randn(3, 10, K, generator=torch.Generator().manual_seed(1)) * 3
    probs = logits.softmax(dim=-1)
    assert as_floats(soft_code_stats(probs)) == pytest.approx(reference(probs), rel=1e-6)


@pytest.mark.parametrize("name", sorted(BOTTLENECKS))
def test_every_bottleneck_compiles_to_one_graph(name):
    """fullgraph=True fails on any graph break (a data-dependent shape, a host read-back):
    what the GPU fast path compiles runs as one graph, forward and backward."""
    torch._dynamo.reset()
    cfg = tiny_model(bottleneck=name, codebook_size=K, dropout=0.0)
    torch.manual_seed(0)
    model = Autoencoder(cfg)
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    eager = model(images)
    compiled = torch.compile(model, backend="eager", fullgraph=True)(images)
    (compiled[0].mean() + compiled[1]).backward()
    torch.testing.assert_close(compiled[0], eager[0])
    assert as_floats(compiled[2]) == as_floats(eager[2])
