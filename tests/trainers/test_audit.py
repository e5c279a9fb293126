import pytest
import torch

from data.config import DataConfig
from models.autoencoder import Autoencoder
from sweeps.judge.ranking import TrialRow, rank
from tests.conftest import tiny_model
from trainers import audit
from trainers.config import ConfigError, ExperimentConfig
from trainers.finetune import parse_patterns, select_trainable
from trainers.steps import train_steps
from trainers.transplant import transplant

DATA = DataConfig(resolution=16)


def model(name: str, seed: int = 0, **extra) -> Autoencoder:
    torch.manual_seed(seed)
    return Autoencoder(tiny_model(bottleneck=name, **extra))


def images(n=16):
    torch.manual_seed(5)
    return (torch.rand(n, 3, 16, 16) * 255).to(torch.uint8)


def audited_training(net: Autoencoder, steps=3, weight_decay=0.0):
    watch = audit.UpdateAudit(net)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(0)
    train_steps(net, optimizer, images(), DATA, 8, steps, generator, torch.device("cpu"))
    return {row.name: row for row in watch.close()}


def test_audit_flags_softvq_codebook_as_never_trained_and_amvq_as_trained():
    soft = audited_training(model("softvq"))
    assert not soft["bottleneck.codebook.weight"].got_gradient
    assert soft["bottleneck.codebook.weight"].cause == "unchanged"
    assert soft["bottleneck.norm.weight"].cause == "gradient"
    argmax = audited_training(model("amvq"))
    assert argmax["bottleneck.codebook.weight"].got_gradient
    assert argmax["bottleneck.codebook.weight"].relative_change > 0


def test_trainable_tensor_without_gradient_is_reported_even_when_decay_moves_it():
    net = model("softvq")
    net.bottleneck.codebook.weight.requires_grad = True  # the group's belief: "E is trained"
    rows = audited_training(net, weight_decay=0.1)
    assert audit.untrained(list(rows.values())) == ["bottleneck.codebook.weight"]
    # AdamW skips tensors whose grad is None, so the codebook stays put without a gradient
    assert rows["bottleneck.codebook.weight"].cause == "unchanged"
    assert audit.summary(list(rows.values()))["audit.untrained_params"] == 1


def test_decay_only_change_is_told_apart_from_gradient_change():
    net = model("identity")
    watch = audit.UpdateAudit(net)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)  # a zero gradient: AdamW still applies weight decay
    torch.optim.AdamW(net.parameters(), lr=0.1, weight_decay=0.5).step()
    rows = watch.close()
    assert {r.cause for r in rows} == {"weight decay only"}
    assert not any(r.got_gradient for r in rows)


def test_transplant_keeps_every_other_weight_bit_identical():
    source = model("llmffn")
    cfg = ExperimentConfig(model=tiny_model(bottleneck="softvq"))
    target = transplant(source, cfg, seed=3)
    before, after = source.state_dict(), target.state_dict()
    outside = [k for k in after if not k.startswith("bottleneck.")]
    assert outside and all(torch.equal(before[k], after[k]) for k in outside)
    # the new bottleneck is exactly a fresh one drawn with the transplant's seed
    assert torch.equal(
        target.bottleneck.codebook.weight, model("softvq", 3).bottleneck.codebook.weight
    )
    assert target.bottleneck.norm.weight.eq(1).all()  # fresh, untrained LayerNorm


def test_transplant_into_another_embedding_size_is_a_clear_error():
    cfg = ExperimentConfig(model=tiny_model(bottleneck="softvq", embed_dim=4))
    with pytest.raises(ConfigError, match="cannot transplant.*pre_bottleneck.weight"):
        transplant(model("ffn"), cfg, seed=0)


def test_layernorm_only_finetune_changes_only_the_layernorm():
    net = model("softvq")
    chosen = select_trainable(net, parse_patterns("bottleneck.norm.*"))
    assert chosen == ["bottleneck.norm.weight", "bottleneck.norm.bias"]
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    rows = audited_training(net, weight_decay=0.01)
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, initial[k])}
    assert changed == set(chosen)
    assert {n for n, r in rows.items() if r.cause != "unchanged"} == set(chosen)
    assert audit.frozen_changed(list(rows.values())) == []


def test_pattern_matching_nothing_lists_parameter_names():
    with pytest.raises(ConfigError, match="matches no parameter; names: encoder.0.weight"):
        select_trainable(model("vq"), ["bottleneck.nrm.*"])
    assert parse_patterns("none") == []


def test_fingerprint_tells_variants_apart_but_not_seeds():
    assert audit.fingerprint(model("vq", 0)) == audit.fingerprint(model("vq", 1))
    prints = {audit.fingerprint(model(n)) for n in ("ffn", "llmffn", "amvq", "smvq", "softvq")}
    assert len(prints) == 5


def test_ranking_reports_two_names_with_one_architecture_and_untrained_tensors():
    def row(value, fingerprint, untrained=""):
        return TrialRow(value, 0, f"{value}-s0", "FINISHED", 0.01, 1, 1, fingerprint, untrained)

    table = {r.value: r for r in rank([row("vq", "aa"), row("ffn", "aa"), row("smvq", "bb", "x")])}
    assert table["ffn"].notes == "same architecture as vq"
    assert table["vq"].notes == "same architecture as ffn"
    assert table["smvq"].notes == "never got a gradient: x"


def test_weights_hash_is_equal_exactly_when_weights_are_bit_identical():
    a, b = model("vq", 0), model("vq", 0)
    assert audit.weights_hash(a) == audit.weights_hash(b)
    with torch.no_grad():
        b.decoder[-1].bias[0] += 1e-7
    assert audit.weights_hash(a) != audit.weights_hash(b)


def test_transplant_into_a_gpt_replaces_every_blocks_ffn_slot_and_keeps_the_rest():
    from models.config import ModelConfig
    from models.registry import build_model

    gpt = {"family": "gpt", "embed_dim": 16, "codebook_size": 32, "layers": 3, "heads": 2}
    torch.manual_seed(0)
    source = build_model(ModelConfig(bottleneck="ffn", **gpt))
    softvq = ModelConfig(bottleneck="softvq", **gpt)
    cfg = ExperimentConfig(model=softvq, data=DataConfig(dataset="pysource"))
    target = transplant(source, cfg, seed=3)
    before, after = source.state_dict(), target.state_dict()
    outside = [k for k in after if ".bottleneck." not in k]
    assert "blocks.2.ffn_norm.weight" in outside
    assert all(torch.equal(before[k], after[k]) for k in outside)
    for block in target.blocks:
        assert not block.bottleneck.codebook.weight.requires_grad  # untrained, frozen, N(0, 1)
        assert block.bottleneck.codebook.weight.std().item() == pytest.approx(1.0, abs=0.25)
    with pytest.raises(ConfigError, match="model.family gpt reads text data"):
        ExperimentConfig(model=softvq)
