import pytest
import torch

from models.bottlenecks import BOTTLENECKS, BottleneckOutput, UnknownBottleneck, build_bottleneck
from models.config import ModelConfig
from tests.conftest import tiny_model

SMALL = tiny_model()


def make(name: str, **extra):
    torch.manual_seed(0)
    return build_bottleneck(tiny_model(bottleneck=name, **extra))


def tokens(requires_grad=True):
    torch.manual_seed(1)
    return torch.randn(2, 5, SMALL.embed_dim, requires_grad=requires_grad)


@pytest.mark.parametrize("name", sorted(BOTTLENECKS))
def test_every_bottleneck_keeps_shape_and_interface(name):
    out = make(name)(tokens())
    assert isinstance(out, BottleneckOutput)
    assert out.z.shape == (2, 5, SMALL.embed_dim)
    assert out.aux_loss.shape == ()
    assert all(v.shape == () and not v.requires_grad for v in out.stats.values())


@pytest.mark.parametrize("name", ["softvq", "amvq", "smvq", "vq"])
def test_codebook_variants_report_usage(name):
    stats = make(name)(tokens()).stats
    assert 1.0 <= stats["perplexity"].item() <= SMALL.codebook_size
    assert 0.0 < stats["code_usage"].item() <= 1.0


def grads_after_backward(name):
    module, z = make(name), tokens()
    out = module(z)
    (out.z.square().sum() + out.aux_loss).backward()
    return module, z


def test_softvq_trains_only_its_layernorm():
    module, z = grads_after_backward("softvq")
    assert module.codebook.weight.grad is None and not module.codebook.weight.requires_grad
    assert module.norm.weight.grad is not None and module.norm.weight.grad.abs().sum() > 0
    assert z.grad is not None and z.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["amvq", "smvq"])
def test_argmax_and_softmax_vq_train_their_codebook(name):
    module, z = grads_after_backward(name)
    assert module.codebook.weight.grad is not None and module.codebook.weight.grad.abs().sum() > 0
    assert z.grad.abs().sum() > 0


def test_vq_straight_through_reaches_encoder_and_losses_reach_codebook():
    module, z = grads_after_backward("vq")
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert module.codebook.weight.grad is not None and module.codebook.weight.grad.abs().sum() > 0


def test_vq_output_values_are_codebook_entries_nearest_by_brute_force():
    module, z = make("vq"), tokens(requires_grad=False)
    out = module(z)
    flat = z.reshape(-1, z.shape[-1])
    brute = torch.stack([((module.codebook.weight - t) ** 2).sum(-1).argmin() for t in flat])
    assert torch.equal(module.nearest(z).reshape(-1), brute)
    assert torch.allclose(out.z.reshape(-1, z.shape[-1]), module.codebook.weight[brute], atol=1e-6)


def test_vq_aux_loss_weights_commitment():
    z = tokens(requires_grad=False)
    plain, heavy = make("vq", commitment=0.0)(z), make("vq", commitment=1.0)(z)
    assert heavy.aux_loss > plain.aux_loss > 0


def test_llmffn_dropout_only_in_train_mode():
    module, z = make("llmffn", dropout=0.5), tokens(requires_grad=False)
    module.train()
    assert not torch.equal(module(z).z, module(z).z)
    module.eval()
    assert torch.equal(module(z).z, module(z).z)


def test_ffn_has_no_dropout():
    module, z = make("ffn"), tokens(requires_grad=False)
    module.train()
    assert torch.equal(module(z).z, module(z).z)


def test_identity_passes_tokens_through():
    z = tokens(requires_grad=False)
    assert torch.equal(make("identity")(z).z, z)


def test_unknown_bottleneck_lists_valid_names():
    with pytest.raises(UnknownBottleneck, match="valid: amvq, ffn, identity, llmffn"):
        build_bottleneck(ModelConfig(bottleneck="vqq"))


@pytest.mark.parametrize(
    ("name", "order"),
    [
        ("softvq", ["norm.weight", "norm.bias", "codebook.weight"]),
        ("amvq", ["norm.weight", "norm.bias", "codebook.weight"]),
        ("smvq", ["norm.weight", "norm.bias", "codebook.weight"]),
        ("ffn", ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"]),
        ("llmffn", ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"]),
    ],
)
def test_parameters_come_in_the_groups_order(name, order):
    """LayerNorm before codebook, as in their quantizers: weights copied by position fit."""
    assert [n for n, _ in make(name).named_parameters()] == order


def test_the_ffn_hidden_width_is_the_codebook_size_as_in_the_groups_code():
    ffn = make("ffn", codebook_size=24)
    assert (ffn.net[0].out_features, ffn.net[2].in_features) == (24, 24)
    assert isinstance(ffn.net[1], torch.nn.GELU) and ffn.net[1].approximate == "none"


def test_softvq_matches_its_formula_by_hand():
    """u = LN(z), p = softmax(u E^T / sqrt(d)), q = p E; forward value q, gradient to u only."""
    module, z = make("softvq"), tokens()
    u = torch.nn.functional.layer_norm(z, (SMALL.embed_dim,))
    codebook = module.codebook.weight
    p = torch.softmax(u @ codebook.T / SMALL.embed_dim**0.5, dim=-1)
    out = module(z)
    torch.testing.assert_close(out.z, p @ codebook)
    out.z.sum().backward()
    # straight-through: d out / d u is the identity, so z's gradient is LayerNorm's backward of 1
    expected = torch.autograd.grad(u.sum(), z)[0]
    torch.testing.assert_close(z.grad, expected)
