import pytest
import torch

from models.autoencoder import Autoencoder
from tests.conftest import tiny_config
from trainers import checkpoints
from trainers.config import ConfigError


def saved(tmp_path, bottleneck: str, **extra):
    cfg = tiny_config(**{"model.bottleneck": bottleneck, **extra})
    model = Autoencoder(cfg.model)
    optimizer = torch.optim.AdamW(model.parameters())
    return checkpoints.save(tmp_path / bottleneck, model, optimizer, cfg, epoch=3, resumes=1)


def test_round_trip_restores_weights_epoch_and_resumes(tmp_path):
    folder = saved(tmp_path, "vq")
    cfg = checkpoints.load_config(folder)
    model = Autoencoder(cfg.model)
    assert checkpoints.restore(folder, model, None) == 3
    assert checkpoints.read_state(folder) == {"epoch": 3, "resumes": 1, "history": []}
    original = torch.load(folder / checkpoints.MODEL_FILE, weights_only=True)
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())


def test_a_checkpoint_of_another_architecture_is_one_clear_error(tmp_path):
    folder = saved(tmp_path, "vq")
    other = tiny_config(**{"model.bottleneck": "ffn"})
    with pytest.raises(ConfigError, match=r"does not match the model's architecture: missing b"):
        checkpoints.restore(folder, Autoencoder(other.model), None)
    wider = tiny_config(**{"model.codebook_size": 64})
    with pytest.raises(ConfigError, match=r"is \(32, 8\), the model wants \(64, 8\)"):
        checkpoints.restore(folder, Autoencoder(wider.model), None)
