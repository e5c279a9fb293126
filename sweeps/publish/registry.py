"""The sweep's winner as a registered model: `models:/ovat-<ablation>/latest` loads the best
trial's autoencoder (the seed with the lowest val loss of the value with the lowest mean val
loss) in one call."""

import math
import tempfile
from pathlib import Path

import numpy as np

from models.autoencoder import Autoencoder
from models.export import Reconstructor
from sweeps.judge.ranking import RankRow, chosen
from sweeps.publish.records import trial_rows
from trainers import checkpoints, keys, tracking


def model_name(ablation: str) -> str:
    return f"ovat-{ablation}"


def register_best(table: list[RankRow], sweep_id: str, run_id: str, ablation: str) -> str:
    """Log the best trial's model on the sweep's run, register it, and return its URI
    (models:/<name>/<version>); "" when no trial finished. The value and its seed are chosen
    on validation loss, so the test loss reported for them is not the minimum of many draws
    from the test set (where a value has no val loss, on test loss as before)."""
    best = chosen(table)
    if best is None:
        return ""
    trials = [
        t for t in trial_rows(sweep_id) if t.value == best.value and not math.isnan(t.test_loss)
    ]
    trial = min(trials, key=lambda t: (math.isnan(t.val_loss), t.val_loss, t.test_loss))
    with tempfile.TemporaryDirectory() as scratch:
        folder = tracking.download_checkpoint(trial.run_id, Path(scratch))
        cfg = checkpoints.load_config(folder)
        model = Autoencoder(cfg.model)
        checkpoints.restore(folder, model, None)
    side = cfg.data.resolution
    example = np.random.default_rng(0).random((1, 3, side, side), dtype=np.float32)
    name = model_name(ablation)
    version = tracking.register_model(run_id, Reconstructor(model), example, name)
    uri = f"models:/{name}/{version}"
    tracking.set_tags(run_id, {keys.BEST_MODEL: uri, keys.BEST_TRIAL: trial.run_name})
    return uri
