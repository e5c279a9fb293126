"""Eval, transplant and fine-tune on runs of the shared sweep, read back from MLflow."""

import pytest
import torch

from sweeps.publish.summary import rebuild
from trainers.followups import evaluate_run, finetune_run, transplant_run

pytestmark = pytest.mark.integration


def trial(runs, value, seed="0"):
    return next(
        r
        for r in runs
        if r.data.tags.get("ovat.value") == value and r.data.tags.get("ovat.seed") == seed
    )


def test_eval_reproduces_the_logged_test_loss_exactly(in_sweep_store):
    _, client, runs, _ = in_sweep_store
    source = trial(runs, "ffn")
    outcome = evaluate_run(source.info.run_name)
    assert outcome["metrics"]["test_loss"] == source.data.metrics["test_loss"]
    logged = client.get_run(outcome["run_id"])
    assert logged.data.tags["ovat.source_run"] == source.info.run_id
    assert logged.data.tags["ovat.role"] == "eval"
    assert logged.data.metrics["test_loss"] == source.data.metrics["test_loss"]


def test_transplant_then_layernorm_finetune(in_sweep_store):
    report, client, runs, _ = in_sweep_store
    source = trial(runs, "ffn", "1")
    grafted = transplant_run(source.info.run_id, "softvq")
    graft_run = client.get_run(grafted["run_id"])
    assert graft_run.data.tags["ovat.source_run"] == source.info.run_id
    assert graft_run.data.params["model.bottleneck"] == "softvq"
    assert "test_loss" in graft_run.data.metrics

    tuned = finetune_run(grafted["run_id"], "bottleneck.norm.*", steps=5)
    tuned_run = client.get_run(tuned["run_id"])
    assert tuned_run.data.tags["ovat.source_run"] == grafted["run_id"]
    assert tuned_run.data.tags["ovat.trainable"] == "bottleneck.norm.weight,bottleneck.norm.bias"
    assert tuned_run.data.metrics["audit.untrained_params"] == 0
    assert tuned_run.data.metrics["audit.frozen_changed"] == 0
    assert {"test_loss_before", "test_loss", "train_loss"} <= set(tuned_run.data.metrics)
    before, after = grafted["model"].state_dict(), tuned["model"].state_dict()
    changed = {k for k in after if not torch.equal(before[k].cpu(), after[k].cpu())}
    assert changed == {"bottleneck.norm.weight", "bottleneck.norm.bias"}
    table = rebuild(report.sweep_id).markdown
    assert "| transplant-ffn-sample-s1 | transplant | ffn-sample-s1 |" in table
    assert "| finetune-transplant-ffn-sample-s1 | finetune | transplant-ffn-sample-s1 |" in table
