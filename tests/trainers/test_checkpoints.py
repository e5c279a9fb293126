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


def test_a_restored_optimizer_state_sits_on_its_parameters_device_and_dtype(tmp_path):
    """A resumed GPU trial: AdamW's moments must load where the parameters are. Loading casts
    the state to each parameter's device and dtype, so the parameters must be placed before
    it. No GPU here: float64 stands in for the device (Module.to takes either, and moves the
    parameters in place as a CPU-to-GPU move does); the same cast governs both."""
    from trainers.loop import build

    cfg = tiny_config(**{"model.bottleneck": "ffn"})
    model, optimizer = build(cfg, torch.device("cpu"))
    sum(p.sum() for p in model.parameters()).backward()
    optimizer.step()  # the moments exist now, float32 on the CPU
    folder = checkpoints.save(tmp_path / "ffn", model, optimizer, cfg, epoch=1)
    model, optimizer = build(cfg, torch.float64)
    checkpoints.restore(folder, model, optimizer)  # the worker's resume()
    model.to(torch.float64)  # then prepare_model moves the model (in place) to the device
    placed = [
        (tensor.device, tensor.dtype) == (param.device, param.dtype)
        for group in optimizer.param_groups
        for param in group["params"]
        for name, tensor in optimizer.state[param].items()
        if name != "step"  # AdamW keeps its step count apart by design
    ]
    assert placed and all(placed)


def test_a_trial_restored_after_its_final_checkpoint_still_logs_that_checkpoint(tmp_path):
    # Such a trial trains no further epoch: its last result is the replayed one, and the run
    # used to end FINISHED with no checkpoint (`register_best`, `make eval` then failed for it).
    from sweeps.run.mlflow_callback import final_checkpoint, metrics_of
    from trainers.keys import RESTORED_CHECKPOINT
    from trainers.loop import replayed

    folder = str(saved(tmp_path, "vq"))
    history = [{"epoch": 1, "val_loss": 0.2}, {"epoch": 2, "val_loss": 0.1}]
    results = replayed(history, folder)
    assert [r["epoch"] for r in results] == [1, 2]
    assert final_checkpoint(results[-1]) == folder
    assert final_checkpoint(results[0]) == ""  # only the last epoch's result names it
    assert RESTORED_CHECKPOINT not in history[-1]  # what later checkpoints keep is unchanged
    assert metrics_of(results[-1]) == {"val_loss": 0.1}  # never a metric
    assert final_checkpoint({**results[-1], "checkpoint_path": "/new"}) == "/new"
    assert replayed([], folder) == []
