"""The sweep's winner as a registered model: `models:/ovat-<ablation>/latest` loads the best
trial's model (the seed with the lowest val loss of the value with the lowest mean val
loss) in one call."""

import math
import tempfile
from pathlib import Path

import numpy as np

from models.export import EXPORTS
from models.registry import build_model
from sweeps.judge.ranking import RankRow, chosen
from sweeps.publish.records import trial_rows
from trainers import checkpoints, keys, tracking

# An input example per model.family, from which MLflow infers the model's signature.
EXAMPLES = {
    "autoencoder": lambda cfg, rng: rng.random(
        (1, 3, cfg.data.resolution, cfg.data.resolution), dtype=np.float32
    ),
    "gpt": lambda cfg, rng: rng.integers(0, 256, (1, cfg.data.context), dtype=np.int64),
}


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
        model = build_model(cfg.model)
        checkpoints.restore(folder, model, None)
    example = EXAMPLES[cfg.model.family](cfg, np.random.default_rng(0))
    name = model_name(ablation)
    version = tracking.register_model(run_id, EXPORTS[cfg.model.family](model), example, name)
    uri = f"models:/{name}/{version}"
    tracking.set_tags(run_id, {keys.BEST_MODEL: uri, keys.BEST_TRIAL: trial.run_name})
    return uri
