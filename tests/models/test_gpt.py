import math

import pytest
import torch

from models.bottlenecks import BOTTLENECKS
from models.config import ModelConfig
from models.gpt import GPT, next_token_loss
from models.registry import build_model, parameter_counts

D, K, LAYERS = 64, 256, 4  # the gpt-ffn ablation's model
SMALL = {"family": "gpt", "embed_dim": 16, "codebook_size": 32, "layers": 2, "heads": 2}


def gpt(bottleneck: str, **extra) -> GPT:
    torch.manual_seed(0)
    return build_model(ModelConfig(**{**SMALL, **extra}, bottleneck=bottleneck))


@pytest.mark.parametrize("bottleneck", sorted(BOTTLENECKS))
def test_a_change_at_position_t_never_changes_outputs_before_t(bottleneck):
    model = gpt(bottleneck).eval()
    tokens = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(1))
    changed = tokens.clone()
    changed[:, 10] = (changed[:, 10] + 1) % 256
    before, after = model(tokens).z, model(changed).z
    assert torch.equal(before[:, :10], after[:, :10])
    assert not torch.allclose(before[:, 10:], after[:, 10:])  # the change is seen from t on


@pytest.mark.parametrize("bottleneck", sorted(BOTTLENECKS))
def test_an_untrained_model_scores_near_ln_256(bottleneck):
    model = build_model(ModelConfig(family="gpt", bottleneck=bottleneck, embed_dim=D,
                                    codebook_size=K, layers=LAYERS))  # fmt: skip
    windows = torch.randint(0, 256, (8, 129), generator=torch.Generator().manual_seed(0))
    per_window, _, _ = next_token_loss(model.eval(), windows)
    assert per_window.shape == (8,)
    assert per_window.mean().item() == pytest.approx(math.log(256), abs=0.05)


def hand_count(ffn_slot: int) -> int:
    embed = head = 256 * D
    attention = 2 * D + (D * 3 * D + 3 * D) + (D * D + D)  # its norm, qkv, proj
    slot_norm = 2 * D if ffn_slot else 0  # attention only: no FFN slot, nothing to normalise
    return embed + LAYERS * (attention + slot_norm + ffn_slot) + 2 * D + head


FFN_SLOT = {
    "ffn": D * K + K + K * D + D,
    "llmffn": D * K + K + K * D + D,
    "softvq": 2 * D + K * D,  # its LayerNorm and the frozen normal codebook
    "amvq": 2 * D + K * D,
    "smvq": 2 * D + K * D,
    "vq": K * D,
    "identity": 0,  # attention only
}


@pytest.mark.parametrize("bottleneck", sorted(FFN_SLOT))
def test_parameter_counts_match_a_hand_count(bottleneck):
    model = build_model(ModelConfig(family="gpt", bottleneck=bottleneck, embed_dim=D,
                                    codebook_size=K, layers=LAYERS))  # fmt: skip
    counts = parameter_counts(model)
    assert counts["params_total"] == hand_count(FFN_SLOT[bottleneck])
    assert counts["params_bottleneck"] == LAYERS * FFN_SLOT[bottleneck]
    frozen = LAYERS * K * D if bottleneck == "softvq" else 0
    assert counts["params_frozen"] == frozen


def test_a_softvq_ffn_holds_about_half_the_ffns_parameters():
    assert set(FFN_SLOT) == set(BOTTLENECKS)
    assert FFN_SLOT["softvq"] / FFN_SLOT["ffn"] == pytest.approx(0.5, abs=0.01)


def test_the_softvq_codebook_keeps_its_normal_draw_and_gets_no_gradient():
    model = gpt("softvq")
    codebook = model.blocks[0].bottleneck.codebook.weight
    assert codebook.std().item() == pytest.approx(1.0, abs=0.2)  # N(0, 1), not GPT's 0.02 init
    windows = torch.randint(0, 256, (4, 17), generator=torch.Generator().manual_seed(0))
    next_token_loss(model, windows)[0].mean().backward()
    assert codebook.grad is None
    assert model.blocks[0].bottleneck.norm.weight.grad.abs().sum() > 0


def test_vq_blocks_add_their_aux_losses_and_average_their_stats():
    model = gpt("vq")
    windows = torch.randint(0, 256, (4, 17), generator=torch.Generator().manual_seed(0))
    logits, aux_loss, stats = model(windows[:, :-1])
    assert logits.shape == (4, 16, 256)
    assert aux_loss.item() > 0
    assert 0 < stats["code_usage"].item() <= 1


def test_a_width_that_does_not_split_into_heads_is_an_error():
    with pytest.raises(ValueError, match="model.heads 3"):
        ModelConfig(family="gpt", embed_dim=16, heads=3)
    with pytest.raises(ValueError, match="model.family must be one of autoencoder, gpt"):
        ModelConfig(family="rnn")
    ModelConfig(embed_dim=6, heads=4)  # the autoencoder has no heads to split into
