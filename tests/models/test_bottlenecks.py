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
    assert module.codebook.grad is None and not module.codebook.requires_grad
    assert module.norm.weight.grad is not None and module.norm.weight.grad.abs().sum() > 0
    assert z.grad is not None and z.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["amvq", "smvq"])
def test_argmax_and_softmax_vq_train_their_codebook(name):
    module, z = grads_after_backward(name)
    assert module.codebook.grad is not None and module.codebook.grad.abs().sum() > 0
    assert z.grad.abs().sum() > 0


def test_vq_straight_through_reaches_encoder_and_losses_reach_codebook():
    module, z = grads_after_backward("vq")
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert module.codebook.grad is not None and module.codebook.grad.abs().sum() > 0


def test_vq_output_values_are_codebook_entries_nearest_by_brute_force():
    module, z = make("vq"), tokens(requires_grad=False)
    out = module(z)
    flat = z.reshape(-1, z.shape[-1])
    brute = torch.stack([((module.codebook - t) ** 2).sum(-1).argmin() for t in flat])
    assert torch.equal(module.nearest(z).reshape(-1), brute)
    assert torch.allclose(out.z.reshape(-1, z.shape[-1]), module.codebook[brute], atol=1e-6)


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
