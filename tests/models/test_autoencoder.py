import pytest
import torch
from torch import nn

from models.autoencoder import Autoencoder, ResidualBlock
from models.config import ModelConfig
from models.registry import parameter_counts


@pytest.mark.parametrize("resolution", [32, 64])
def test_reconstruction_has_input_shape_and_latent_is_4x_smaller(resolution):
    model = Autoencoder(ModelConfig(bottleneck="identity"))
    x = torch.rand(2, 3, resolution, resolution)
    assert model(x).z.shape == x.shape
    latent = model.pre_bottleneck(model.encoder(x))
    assert latent.shape == (2, 64, resolution // 4, resolution // 4)


def test_default_architecture_is_the_groups():
    model = Autoencoder(ModelConfig())
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 64, (4, 4), (2, 2)),
        (64, 128, (4, 4), (2, 2)),
        (128, 128, (3, 3), (1, 1)),
    ]
    ups = [m for m in model.decoder if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in ups] == [
        (128, 128, (3, 3)),
        (128, 64, (4, 4)),
        (64, 3, (4, 4)),
    ]
    inner = model.encoder[5].net
    assert (inner[1].out_channels, inner[3].kernel_size) == (32, (1, 1))
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))


def test_parameter_counts_show_vq_has_half_the_ffn_bottleneck():
    vq = parameter_counts(Autoencoder(ModelConfig(bottleneck="vq")))
    ffn = parameter_counts(Autoencoder(ModelConfig(bottleneck="ffn")))
    assert vq["params_bottleneck"] == 512 * 64
    assert ffn["params_bottleneck"] == 64 * 512 + 512 + 512 * 64 + 64
    assert ffn["params_bottleneck"] == pytest.approx(2 * vq["params_bottleneck"], rel=0.01)


def test_softvq_codebook_counts_as_frozen():
    counts = parameter_counts(Autoencoder(ModelConfig(bottleneck="softvq")))
    assert counts["params_frozen"] == 512 * 64
    assert counts["params_trainable"] == counts["params_total"] - 512 * 64


@pytest.mark.parametrize("bad", [{"embed_dim": 0}, {"dropout": 1.0}, {"res_blocks": -1}])
def test_bad_model_values_are_rejected(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        ModelConfig(**bad)


def hand_block(residual: str) -> ResidualBlock:
    """2 channels, F = Conv1x1(ReLU(Conv3x3(.))) with Conv3x3 = identity and Conv1x1 = 2 I + 0.5:
    on non-negative r, F(r) = 2 r + 0.5."""
    block = ResidualBlock(2, 2, residual)
    with torch.no_grad():
        for conv in (block.net[1], block.net[3]):
            conv.weight.zero_()
            conv.bias.zero_()
        for c in range(2):
            block.net[1].weight[c, c, 1, 1] = 1.0
            block.net[3].weight[c, c, 0, 0] = 2.0
        block.net[3].bias.fill_(0.5)
    return block


def test_the_groups_residual_block_rectifies_the_skip():
    """Their in-place ReLU rewrites the input before `out += input`: relu(x) + F(relu(x)).
    With x = (-1, 2): relu(x) = (0, 2), F = (0.5, 4.5), so (0.5, 6.5); the textbook block,
    x + F(relu(x)), gives (-0.5, 6.5): the negative input passes through its skip."""
    x = torch.tensor([-1.0, 2.0]).reshape(1, 2, 1, 1)
    group = hand_block("group")(x).flatten().tolist()
    preact = hand_block("preact")(x).flatten().tolist()
    assert group == [0.5, 6.5]
    assert preact == [-0.5, 6.5]


def test_the_default_model_uses_the_groups_block_and_the_block_is_in_the_fingerprint():
    from trainers.audit import fingerprint

    model = Autoencoder(ModelConfig())
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 4 and {b.residual for b in blocks} == {"group"}
    textbook = Autoencoder(ModelConfig(residual="preact"))
    assert fingerprint(model) != fingerprint(textbook)
    with pytest.raises(ValueError, match="model.residual must be one of group, preact"):
        ModelConfig(residual="post")
