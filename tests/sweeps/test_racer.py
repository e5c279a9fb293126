"""The SEEDS=auto Searcher driven as Tune drives it (suggest, complete, save, restore); no Ray
instance is started."""

from ray.tune.search import Searcher

from sweeps.judge.racing import SEPARATED, Rule
from sweeps.run.racer import SeedRacer
from tests.conftest import tiny_plan

LOSSES = {"vq": 0.5, "ffn": 0.1}  # far apart: vq separated at the first look


def plan(budget: int = 0, first_seed: int = 0):
    raw = {"vary": {"model.bottleneck": ["vq", "ffn"]}, "baseline": "vq"}
    return tiny_plan("racer", raw, rule=Rule(3, 5, budget), first_seed=first_seed)


def complete(racer: SeedRacer, trial_id: str) -> None:
    value, seed = racer.started[trial_id]
    result = {"test_loss": LOSSES[value] + 0.001 * seed, "ovat.fingerprint": value}
    racer.on_trial_complete(trial_id, result)


def test_the_racer_suggests_a_round_waits_speculates_and_finishes(tmp_path):
    racer = SeedRacer(plan())
    first = [racer.suggest(f"t{i}") for i in range(6)]
    assert sorted(c["trial"] for c in first) == sorted(
        f"{v}/s{s}" for v in ("vq", "ffn") for s in range(3)
    )
    # the round is all started: the next round's seeds start while it waits
    assert {racer.suggest("t6")["trial"], racer.suggest("t7")["trial"]} == {"vq/s3", "ffn/s3"}
    assert racer.suggest("t8") is None  # nothing more until results arrive
    for i in range(6):
        complete(racer, f"t{i}")
    race = racer.race()
    assert race.decision == {"vq": SEPARATED, "ffn": "best"} and race.finished
    assert racer.suggest("t9") is None  # speculative trials still running
    racer.save(str(tmp_path / "racer.pkl"))
    restored = SeedRacer(plan())
    restored.restore(str(tmp_path / "racer.pkl"))
    assert restored.running == {"t6", "t7"} and restored.race().decision == race.decision
    for trial_id in ("t6", "t7"):
        complete(restored, trial_id)
    assert restored.suggest("t10") == Searcher.FINISHED
    assert restored.race().counted == {"vq": 3, "ffn": 3}  # the extra seeds not counted


def test_a_failed_trial_is_a_result_and_never_rerun():
    racer = SeedRacer(plan())
    ids = [f"t{i}" for i in range(6)]
    for trial_id in ids:
        racer.suggest(trial_id)
    racer.on_trial_complete("t0", error=True)
    value, seed = racer.started["t0"]
    assert racer.results[value][seed] != racer.results[value][seed]  # NaN: failed
    assert (value, seed) not in racer.race().needed


def test_a_race_from_a_first_seed_other_than_0_runs_that_seed_first_and_finishes():
    racer = SeedRacer(plan(first_seed=3))
    first = [racer.suggest(f"t{i}") for i in range(6)]
    assert sorted(c["trial"] for c in first) == sorted(
        f"{v}/s{s}" for v in ("vq", "ffn") for s in (3, 4, 5)
    )
    for i in range(6):
        complete(racer, f"t{i}")
    assert racer.race().decision == {"vq": SEPARATED, "ffn": "best"}
    assert racer.suggest("t6") == Searcher.FINISHED
