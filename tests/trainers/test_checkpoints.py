import pytest
import torch

from models.autoencoder import Autoencoder
from trainers import checkpoints
from trainers.config import ConfigError, ExperimentConfig

SMALL = {"model.stem_channels": 8, "model.hidden_channels": 16, "model.res_channels": 4,
         "model.embed_dim": 8, "model.codebook_size": 16}  # fmt: skip


def saved(tmp_path, bottleneck: str, **extra):
    cfg = ExperimentConfig().with_overrides({**SMALL, "model.bottleneck": bottleneck, **extra})
    model = Autoencoder(cfg.model)
    optimizer = torch.optim.AdamW(model.parameters())
    return checkpoints.save(tmp_path / bottleneck, model, optimizer, cfg, epoch=3, resumes=1)


def test_round_trip_restores_weights_epoch_and_resumes(tmp_path):
    folder = saved(tmp_path, "vq")
    cfg = checkpoints.load_config(folder)
    model = Autoencoder(cfg.model)
    assert checkpoints.restore(folder, model, None) == 3
    assert checkpoints.read_state(folder) == {"epoch": 3, "resumes": 1}
    original = torch.load(folder / checkpoints.MODEL_FILE, weights_only=True)
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())


def test_a_checkpoint_of_another_architecture_is_one_clear_error(tmp_path):
    folder = saved(tmp_path, "vq")
    other = ExperimentConfig().with_overrides({**SMALL, "model.bottleneck": "ffn"})
    with pytest.raises(ConfigError, match=r"does not match the model's architecture: missing b"):
        checkpoints.restore(folder, Autoencoder(other.model), None)
    wider = ExperimentConfig().with_overrides({**SMALL, "model.codebook_size": 32})
    with pytest.raises(ConfigError, match=r"is \(16, 8\), the model wants \(32, 8\)"):
        checkpoints.restore(folder, Autoencoder(wider.model), None)
