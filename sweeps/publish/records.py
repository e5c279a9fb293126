"""A sweep's records read back from MLflow: its runs, and its trials as ranking rows."""

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

from sweeps.errors import UnknownSweep
from sweeps.judge.racing import Rule
from sweeps.judge.ranking import TrialRow
from trainers import keys, tracking


def trial_rows(sweep_id: str, runs: list | None = None) -> list[TrialRow]:
    """The sweep's trials as ranking rows; `runs`: its trial runs where already read."""
    rows = []
    for run in tracking.sweep_runs(sweep_id) if runs is None else runs:
        tags, metrics = run.data.tags, run.data.metrics
        rows.append(
            TrialRow(
                value=tags.get(keys.VALUE, "?"),
                seed=int(tags.get(keys.SEED, -1)),
                run_name=run.info.run_name,
                status=run.info.status,
                test_loss=metrics.get(keys.TEST_LOSS, math.nan),
                params_total=int(metrics.get(keys.PARAMS_TOTAL, 0)),
                params_bottleneck=int(metrics.get(keys.PARAMS_BOTTLENECK, 0)),
                fingerprint=tags.get(keys.FINGERPRINT, ""),
                untrained=tags.get(keys.UNTRAINED, ""),
                frozen_changed=tags.get(keys.FROZEN_CHANGED, ""),
                run_id=run.info.run_id,
                error=tags.get(keys.ERROR, ""),
                val_loss=metrics.get(keys.VAL_LOSS, math.nan),
                hardware_kind=tags.get(keys.HARDWARE_KIND, ""),
            )
        )
    return rows


def seed_rule(run) -> Rule | None:
    """The race of a SEEDS=auto sweep, from its sweep run's tag."""
    text = run.data.tags.get(keys.SEED_RULE)
    return Rule(**json.loads(text)) if text else None


# A sweep id names a folder under results/: letters, digits, dot, dash and underscore, and not
# starting with a dot (a tag like "x/../.." would write outside results/).
SWEEP_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def checked(sweep_id: str) -> str:
    """A sweep id read from a run's tag, refused unless it is safe as a folder name."""
    if not SWEEP_ID.fullmatch(sweep_id) or ".." in sweep_id:
        raise UnknownSweep(
            f"sweep id {sweep_id!r} is not a folder name ovat writes (letters, digits, '.', "
            "'-', '_'): refused rather than written outside results/"
        )
    return sweep_id


def sweep_run(sweep_id: str, ablation: str = ""):
    """A sweep's own run, by id or as `latest` / `previous` (of `ablation` where given)."""
    if sweep_id == "latest":
        sweep_id = tracking.latest_sweep_id(checked_ablation(ablation)) or ""
    elif sweep_id == "previous":
        sweep_id = resolve(sweep_id, ablation)
    runs = tracking.sweep_runs(sweep_id, keys.ROLE_SWEEP) if sweep_id else []
    if not runs:
        of = f" of ablation {ablation!r}" if ablation else ""
        raise UnknownSweep(
            f"no sweep {sweep_id or 'latest'!r}{of} in {tracking.tracking_uri()}; "
            f"run `make sweep{f' ABLATION={ablation}' if ablation else ''}` first or pass "
            "SWEEP=<sweep id>"
        )
    checked(runs[-1].data.tags.get(keys.SWEEP_ID, ""))
    return runs[-1]


def checked_ablation(ablation: str) -> str:
    """An ablation name given to scope `latest`: the same safe pattern as a sweep id."""
    if ablation and (not SWEEP_ID.fullmatch(ablation) or ".." in ablation):
        raise UnknownSweep(
            f"ABLATION={ablation!r} is not an ablation name (letters, digits, '.', '-', '_')"
        )
    return ablation


def resolve(ref: str, ablation: str = "") -> str:
    """A sweep id, or `latest` / `previous`: the newest sweep and the one before it, of
    `ablation` where given (`make rank ABLATION=residual`), else of any ablation."""
    if ref not in ("latest", "previous"):
        return ref
    scope = {keys.ABLATION: checked_ablation(ablation)} if ablation else {}
    sweeps = [  # oldest first; probes are not sweeps
        r
        for r in tracking.search_runs({keys.ROLE: keys.ROLE_SWEEP, **scope})
        if r.data.tags.get(keys.ABLATION) != keys.PROBE_ABLATION
    ]
    wanted = 1 if ref == "latest" else 2
    if len(sweeps) < wanted:
        of = f" of ablation {ablation!r}" if ablation else ""
        raise UnknownSweep(f"no {ref} sweep{of} in {tracking.tracking_uri()}: {len(sweeps)} sweeps")
    return sweeps[-wanted].data.tags[keys.SWEEP_ID]


@dataclass(frozen=True)
class Sweep:
    """One side of a diff: its sweep run and its trials, read from MLflow."""

    sweep_id: str
    run: object  # the sweep's MLflow run
    trials: list  # its trial runs

    @classmethod
    def load(cls, ref: str) -> "Sweep":
        run = sweep_run(ref)
        sweep_id = run.data.tags[keys.SWEEP_ID]
        return cls(sweep_id, run, tracking.sweep_runs(sweep_id))

    @cached_property
    def _by_value(self) -> dict[str, list]:
        """value -> its trial runs, in the sweep's order: read per value for every row of a diff,
        so indexed once (a scan per value and query grew with values x trials)."""
        grouped: dict[str, list] = {}
        for t in self.trials:
            grouped.setdefault(t.data.tags.get(keys.VALUE, "?"), []).append(t)
        return grouped

    def finished(self, value: str) -> list:
        return [t for t in self._by_value.get(value, []) if keys.TEST_LOSS in t.data.metrics]

    def losses(self, value: str) -> dict[int, float]:
        """seed -> test loss of the value's finished trials (the newest where a seed repeats:
        `repeated` names those)."""
        return {
            int(t.data.tags[keys.SEED]): t.data.metrics[keys.TEST_LOSS]
            for t in self.finished(value)
        }

    def repeated(self, value: str) -> list[int]:
        """Seeds the value finished more than once (a probe, or sweeps pooled into one run)."""
        counts = Counter(int(t.data.tags[keys.SEED]) for t in self.finished(value))
        return sorted(s for s, n in counts.items() if n > 1)

    def values(self) -> list[str]:
        return list(self._by_value)

    def trial_tag(self, value: str, tag: str) -> set[str]:
        return {t.data.tags[tag] for t in self._by_value.get(value, []) if tag in t.data.tags}

    def data(self) -> set[str]:
        """The prepared data its trials read: name and digest of their dataset inputs."""
        return {
            f"{d.dataset.name} ({d.dataset.digest})"
            for t in self.trials
            for d in (t.inputs.dataset_inputs if t.inputs else [])
        }
