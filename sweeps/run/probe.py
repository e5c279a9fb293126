"""The placement-instability probe: is a run's spread placement noise or seed noise?

One trial's exact config is rerun `repeats` times with its own seed (spread over the cluster's
nodes, each rerun pinned to one by the node-id label Ray gives every node; reruns that run at
the same time on one node get different GPUs from Ray), `repeats` times with other seeds on one node, and, with
`deterministic`, the same-seed reruns again under `torch.use_deterministic_algorithms`.

With `kinds="auto"` the same-seed reruns go to every hardware kind the probe can reach instead:
one node of each distinct kind among the cluster's nodes and, for a trial on CPU, every x86
instruction set below a node's own (`resources.cpu_isa`). The report then splits the spread
three ways (same seed on one kind, same seed across kinds, across seeds) and names the source
sweep's gaps that the across-kind spread could close.
"""

import math
import statistics
from collections import Counter
from dataclasses import dataclass

import ray

from sweeps.define import ablation as ablations
from sweeps.define.plan import SweepPlan, Trial
from sweeps.judge import kinds as kind_stats
from sweeps.publish.records import trial_rows
from sweeps.run import kinds as reach
from sweeps.run.cluster import ensure_ray
from sweeps.run.tuner import run_plan
from trainers import keys, tracking
from trainers.config import ConfigError, ExperimentConfig, valid_keys
from trainers.paths import results_dir
from trainers.trial import scaling_config

SAME, ACROSS, DETERMINISTIC = "same-seed", "across-seed", "same-seed-deterministic"
KINDS = ("none", "auto")  # `make probe KINDS=`: none reruns on the nodes as they come
# The probe sweep's metrics with KINDS=auto: the spread of test loss (max - min) three ways.
SPREAD_WITHIN_KIND = "probe_spread_within_kind"
SPREAD_ACROSS_KINDS = "probe_spread_across_kinds"
SPREAD_ACROSS_SEEDS = "probe_spread_across_seeds"


def source_config(run) -> ExperimentConfig:
    params = {k: v for k, v in run.data.params.items() if k in valid_keys()}
    if not params:
        raise ConfigError(f"run {run.info.run_name} has no ovat config params to probe")
    return ExperimentConfig.from_flat(params)


def alive_nodes(need: dict[str, float], nodes: list[dict] | None = None) -> list[str]:
    """Ids of the live nodes that can hold one worker's `need`, in a fixed order (IP, id): a
    rerun pinned to a node without GPUs (a CPU-only head) would wait forever."""
    nodes = ray.nodes() if nodes is None else nodes
    fit = [
        n
        for n in nodes
        if n["Alive"] and all(n["Resources"].get(r, 0) >= a for r, a in need.items())
    ]
    return [n["NodeID"] for n in sorted(fit, key=lambda n: (n["NodeManagerAddress"], n["NodeID"]))]


def probe_trials(
    cfg: ExperimentConfig,
    repeats: int,
    nodes: list[str],
    deterministic: bool,
    kinds: list[reach.KindTarget] | None = None,
) -> tuple[Trial, ...]:
    """Same seed on node r mod N, or `repeats` times on each kind; other seeds all on the first
    node (only pinned when N > 1)."""
    spread = (lambda r: nodes[r % len(nodes)]) if len(nodes) > 1 else (lambda r: "")
    seed = cfg.train.seed
    if kinds:
        trials = [
            Trial(
                value=SAME,
                seed=seed,
                config=cfg.with_overrides({"resources.cpu_isa": kind.cpu_isa}),
                repeat=k * repeats + r,
                node=kind.node,
            )
            for k, kind in enumerate(kinds)
            for r in range(repeats)
        ]
    else:
        trials = [
            Trial(value=SAME, seed=seed, config=cfg, repeat=r, node=spread(r))
            for r in range(repeats)
        ]
    for r in range(repeats):
        other = cfg.with_overrides({"train.seed": seed + 1 + r})
        trials.append(Trial(value=ACROSS, seed=seed + 1 + r, config=other, node=spread(0)))
    if deterministic:
        strict = cfg.with_overrides({"train.deterministic": True})
        trials += [
            Trial(value=DETERMINISTIC, seed=seed, config=strict, repeat=r, node=spread(r))
            for r in range(repeats)
        ]
    return tuple(trials)


@dataclass(frozen=True)
class ProbeRow:
    probe: str
    test_loss: float
    weights_hash: str
    images_per_s: float
    placement: str  # node IP and device (GPU UUID on GPU)
    kind: str = ""  # placement.hardware_kind


def probe_rows(sweep_id: str) -> list[ProbeRow]:
    rows = []
    for run in tracking.sweep_runs(sweep_id):
        tags, metrics = run.data.tags, run.data.metrics
        where = tags.get("placement.gpu_uuid") or tags.get("placement.device", "?")
        rows.append(
            ProbeRow(
                tags.get(keys.PROBE, "?"),
                metrics.get(keys.TEST_LOSS, float("nan")),
                tags.get(keys.WEIGHTS_HASH, ""),
                metrics.get(keys.IMAGES_PER_S, 0.0),
                f"{tags.get('placement.node_ip', '?')} node {tags.get('placement.node_id', '?')[:8]} "
                f"{where}",
                tags.get(keys.HARDWARE_KIND, "?"),
            )
        )
    return rows


def _variance(values: list[float]) -> float:
    return statistics.variance(values) if len(values) > 1 else float("nan")


def summarize(rows: list[ProbeRow]) -> str:
    """Markdown: variance within same-seed reruns against across seeds, identical weights,
    the deterministic mode's throughput cost, and the same split by placement."""
    lines = [
        "| probe | n | mean test loss | variance | bit-identical weights | images/s |",
        "|---|---:|---:|---:|---|---:|",
    ]
    groups = {p: [r for r in rows if r.probe == p] for p in (SAME, ACROSS, DETERMINISTIC)}
    speed = {}
    for probe, group in groups.items():
        if not group:
            continue
        losses = [r.test_loss for r in group]
        top = Counter(r.weights_hash for r in group).most_common(1)[0][1]
        identical = f"{top}/{len(group)}" if probe != ACROSS else f"{top}/{len(group)} (expected 1)"
        speed[probe] = statistics.fmean(r.images_per_s for r in group)
        lines.append(
            f"| {probe} | {len(group)} | {statistics.fmean(losses):.6f} | "
            f"{_variance(losses):.3g} | {identical} | {speed[probe]:.1f} |"
        )
    lines += ["", "| probe | placement | n | mean test loss |", "|---|---|---:|---:|"]
    for (probe, where), group in sorted(_by_placement(rows).items()):
        mean = statistics.fmean(r.test_loss for r in group)
        lines.append(f"| {probe} | {where} | {len(group)} | {mean:.6f} |")
    if SAME in speed and DETERMINISTIC in speed and speed[SAME]:
        lines += [
            "",
            (
                f"Deterministic mode runs at {speed[DETERMINISTIC] / speed[SAME]:.2f}x "
                "the throughput of the default mode."
            ),
        ]
    return "\n".join(lines) + "\n"


def _by_placement(rows: list[ProbeRow]) -> dict[tuple[str, str], list[ProbeRow]]:
    groups: dict[tuple[str, str], list[ProbeRow]] = {}
    for row in rows:
        groups.setdefault((row.probe, row.placement), []).append(row)
    return groups


def kind_spreads(rows: list[ProbeRow]) -> kind_stats.Spreads:
    return kind_stats.spreads(
        [(r.kind, r.test_loss) for r in rows if r.probe == SAME],
        [(r.kind, r.test_loss) for r in rows if r.probe == ACROSS],
    )


def sweep_gaps(sweep_id: str) -> list[tuple[str, str, float]]:
    """The gaps between adjacent values of the probed run's own sweep."""
    losses: dict[str, list[float]] = {}
    for row in trial_rows(sweep_id):
        losses.setdefault(row.value, []).append(row.test_loss)
    return kind_stats.gaps(losses)


def check_kinds(kinds: str) -> None:
    if kinds not in KINDS:
        raise ConfigError(f"KINDS must be one of {', '.join(KINDS)}, got {kinds!r}")


def check_repeats(repeats: int) -> None:
    if repeats < 2:
        raise ConfigError(f"REPEATS must be >= 2 to measure a variance, got {repeats}")


def run_probe(
    ref: str, repeats: int, deterministic: bool = False, verbose: int = 0, kinds: str = "none"
) -> str:
    """Probe a finished run's exact config; the probe's runs point back at it. With kinds, the
    report names the gaps of the run's own sweep that the hardware alone could close."""
    check_repeats(repeats)
    check_kinds(kinds)
    run = tracking.resolve_run(ref)
    experiment = tracking.client().get_experiment(run.info.experiment_id).name
    tags = {keys.SOURCE_RUN: run.info.run_id, keys.SOURCE_NAME: run.info.run_name}
    sweep_id = run.data.tags.get(keys.SWEEP_ID)
    gaps = sweep_gaps(sweep_id) if kinds == "auto" and sweep_id else None
    return probe_config(
        source_config(run),
        repeats,
        deterministic,
        run.info.run_name,
        experiment,
        tags,
        verbose,
        kinds=kinds,
        gaps=gaps,
    )


def probe_config(
    cfg: ExperimentConfig,
    repeats: int,
    deterministic: bool,
    title: str,
    experiment: str,
    tags: dict[str, str] | None = None,
    verbose: int = 0,
    kinds: str = "none",
    gaps: list[tuple[str, str, float]] | None = None,
) -> str:
    """Rerun `cfg` as a small Tune sweep and write, log and return the probe's report."""
    check_repeats(repeats)
    check_kinds(kinds)
    ensure_ray()
    need = scaling_config(cfg.resources).resources_per_worker
    nodes = alive_nodes(need)
    targets = reach.targets(nodes, not cfg.resources.use_gpu) if kinds == "auto" else None
    if targets:
        names = "; ".join(t.label for t in targets)
        print(f"ovat: probe: {len(targets)} hardware kinds reachable: {names}", flush=True)
    trials = probe_trials(cfg, repeats, nodes, deterministic, targets)
    plan = SweepPlan(
        name=keys.PROBE_ABLATION,
        trials=trials,
        base=cfg,
        vary="probe",
        baseline=SAME,
        experiment=experiment,
        seeds=repeats,
        tags=tags or {},
        value_tag=keys.PROBE,
    )
    published = run_plan(plan, verbose)
    rows = probe_rows(published.sweep_id)
    text = f"### probe of {title} ({published.sweep_id})\n\n" + summarize(rows)
    parent = tracking.sweep_runs(published.sweep_id, keys.ROLE_SWEEP)[0]
    if targets:
        found = kind_spreads(rows)
        text += "\n" + kind_stats.to_markdown(found, gaps)
        spread_metrics = {
            SPREAD_WITHIN_KIND: found.within_kind,
            SPREAD_ACROSS_KINDS: found.across_kinds,
            SPREAD_ACROSS_SEEDS: found.across_seeds,
        }
        finite = {k: v for k, v in spread_metrics.items() if math.isfinite(v)}
        tracking.log_metrics(parent.info.run_id, finite, step=0)
    path = results_dir() / published.sweep_id / "probe.md"
    path.write_text(text)
    tracking.log_artifact(parent.info.run_id, path)
    return text


def probe_ablation(
    ablation: ablations.Ablation,
    cfg: ExperimentConfig,
    repeats: int | None,
    first_seed: int | None,
    verbose: int = 0,
) -> str:
    """An ablation file with a `probe:` section: probe its base config `cfg` (the file's base
    with the command line's overrides), no source run needed."""
    settings = ablation.probe or {}
    if first_seed is not None:
        cfg = cfg.with_overrides({"train.seed": first_seed})
    title = f"{ablation.name} ({cfg.model.bottleneck}, seed {cfg.train.seed})"
    return probe_config(
        cfg,
        repeats or int(settings.get("repeats", 3)),
        bool(settings.get("deterministic", False)),
        title,
        f"ovat-{ablation.name}",
        {keys.ABLATION_FILE: ablation.name},
        verbose,
    )
