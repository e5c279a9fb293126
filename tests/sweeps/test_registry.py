"""The sweep's winner registered in MLflow's model registry, loaded back as users would."""

import math

import mlflow
import torch

from models.autoencoder import Autoencoder
from sweeps.judge import ranking
from sweeps.publish.records import trial_rows
from sweeps.publish.registry import register_best
from tests.conftest import tiny_config
from trainers import checkpoints, tracking


def trial_with_checkpoint(tmp_path, value: str, loss: float, parent: str) -> Autoencoder:
    cfg = tiny_config(**{"model.bottleneck": value, "data.resolution": 16})
    torch.manual_seed(len(value))
    model = Autoencoder(cfg.model)
    tags = {"ovat.sweep_id": "s", "ovat.role": "trial", "ovat.value": value, "ovat.seed": 0}
    run = tracking.start_run("ovat-reg", f"{value}-s0", tags, {}, parent)
    tracking.log_metrics(run, {"test_loss": loss}, step=1)
    folder = checkpoints.save(
        tmp_path / value, model, torch.optim.AdamW(model.parameters()), cfg, epoch=1
    )
    tracking.log_artifacts(run, folder, "checkpoint")
    tracking.end_run(run)
    return model


def test_the_best_trials_model_is_registered_and_loads_in_one_call(workspace, tmp_path):
    parent = tracking.start_run("ovat-reg", "s", {"ovat.sweep_id": "s", "ovat.role": "sweep"})
    best = trial_with_checkpoint(tmp_path, "ffn", 0.01, parent)
    trial_with_checkpoint(tmp_path, "vq", 0.02, parent)
    table = ranking.rank(trial_rows("s"), baseline="vq")
    uri = register_best(table, "s", parent, "reg")
    assert uri == "models:/ovat-reg/1"
    mlflow.set_tracking_uri(tracking.tracking_uri())
    loaded = mlflow.pytorch.load_model("models:/ovat-reg/latest")
    images = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(images), best.eval()(images).z)
    run = tracking.client().get_run(parent)
    assert run.data.tags["ovat.best_model"] == uri and run.data.tags["ovat.best_trial"] == "ffn-s0"
    assert not math.isnan(table[0].test_loss_mean)
