"""The language-model family end to end: the gpt-ffn ablation's own file, shrunk, swept on the
shared Ray instance; its ranking, registered model and follow-ups read back from MLflow."""

import json
import math

import mlflow
import pytest
import torch

from sweeps.define import ablation as ablations
from sweeps.run.tuner import run_plan
from trainers.followups import evaluate_run, finetune_run, transplant_run

pytestmark = pytest.mark.integration

# The file's model and data at debug size: two values, one seed, one short epoch.
SHRUNK = {
    "model.embed_dim": 8,
    "model.codebook_size": 32,
    "model.layers": 2,
    "model.heads": 2,
    "data.context": 32,
    "data.limit": 64,
    "train.epochs": 1,
    "train.batch_size": 16,
}


@pytest.fixture(scope="module")
def gpt_sweep(ray_session, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt")
    ablation = ablations.load("gpt-ffn")
    raw = {"preset": ablation.preset, "base": dict(ablation.base),
           "vary": {"model.bottleneck": ["ffn", "softvq"]}, "baseline": "ffn", "seeds": 1}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
        patch.setenv("OVAT_RESULTS", str(folder / "results"))
        patch.chdir(folder)
        plan = ablations.plan(ablations.Ablation.from_dict("gpt-ffn", raw), SHRUNK)
        published = run_plan(plan)
        client = mlflow.tracking.MlflowClient(f"sqlite:///{folder}/mlflow.db")
        runs = client.search_runs(
            [e.experiment_id for e in client.search_experiments()], "tags.`ovat.role` = 'trial'"
        )
        yield published, client, {r.data.tags["ovat.value"]: r for r in runs}


def test_the_sweep_ranks_in_nats_and_bits_per_byte_with_parameter_counts(gpt_sweep):
    published, client, trials = gpt_sweep
    rows = {r.value: r for r in published.ranking}
    assert set(rows) == {"ffn", "softvq"}
    for value, row in rows.items():
        assert row.test_loss_mean == trials[value].data.metrics["test_loss"]
        assert row.test_bits_per_byte == pytest.approx(row.test_loss_mean / math.log(2))
        assert row.test_loss_mean < math.log(256)  # it learned something in one epoch
    # 2 blocks: ffn 8*32+32+32*8+8 = 552 a slot; softvq 2*8 + 32*8 = 272 (256 frozen)
    assert rows["ffn"].params_bottleneck == 2 * 552
    assert rows["softvq"].params_bottleneck == 2 * 272
    assert "| ± std | bits/byte |" in published.markdown.splitlines()[2]
    assert "/#/experiments/" in published.leaderboard  # the value runs, best first
    experiment = client.get_experiment_by_name("ovat-gpt-ffn")
    key = published.leaderboard.split("viewStateShareKey=")[1]
    view = json.loads(experiment.tags[f"mlflow.sharedViewState.{key}"])
    assert "metrics.`test_bits_per_byte`" in view["selectedColumns"]
    methods = published.paths["methods"].read_text()
    assert "byte-level GPT of 2 blocks, width 8" in methods
    assert "windows of 33 bytes" in methods


def test_the_registered_model_predicts_next_bytes(gpt_sweep):
    published, _, _ = gpt_sweep
    assert published.model.startswith("models:/ovat-gpt-ffn/")
    model = mlflow.pytorch.load_model(published.model)
    logits = model(torch.randint(0, 256, (3, 20)))
    assert logits.shape == (3, 20, 256)


def test_a_trial_keeps_its_samples_beside_its_checkpoint(gpt_sweep):
    _, client, trials = gpt_sweep
    run_id = trials["ffn"].info.run_id
    names = {a.path for a in client.list_artifacts(run_id, "checkpoint")}
    assert "checkpoint/samples.txt" in names
    text = client.download_artifacts(run_id, "checkpoint/samples.txt")
    with open(text, encoding="utf-8") as file:
        lines = file.read().splitlines()
    assert lines[0] == "## test window 0"
    assert [line.split(":")[0] for line in lines[1:4]] == ["prompt", "truth", "model"]


def test_eval_transplant_and_a_layernorm_finetune_work_on_the_language_model(gpt_sweep):
    _, client, trials = gpt_sweep
    source = trials["ffn"]
    evaluated = evaluate_run(source.info.run_id)
    assert evaluated["metrics"]["test_loss"] == source.data.metrics["test_loss"]

    grafted = transplant_run(source.info.run_id, "softvq")
    graft_run = client.get_run(grafted["run_id"])
    assert graft_run.data.params["model.bottleneck"] == "softvq"
    assert graft_run.data.params["model.family"] == "gpt"
    kept = {k: v for k, v in grafted["model"].state_dict().items() if ".bottleneck." not in k}
    assert {k for k in kept if k.startswith("blocks.0.")} >= {"blocks.0.ffn_norm.weight"}

    tuned = finetune_run(grafted["run_id"], "*.bottleneck.norm.*", steps=3)
    norms = {f"blocks.{i}.bottleneck.norm.{p}" for i in range(2) for p in ("weight", "bias")}
    tuned_run = client.get_run(tuned["run_id"])
    assert set(tuned_run.data.tags["ovat.trainable"].split(",")) == norms
    assert tuned_run.data.metrics["audit.frozen_changed"] == 0
    before, after = grafted["model"].state_dict(), tuned["model"].state_dict()
    changed = {k for k in after if not torch.equal(before[k].cpu(), after[k].cpu())}
    assert changed == norms
