"""The MLflow UI as the sweep's leaderboard: saved views of its value runs (the ranking, best
first) and of its trial runs (one row per seed).

MLflow 3.17's UI reads a shared view from the experiment tag `mlflow.sharedViewState.<key>`
when the URL of the runs page carries `viewStateShareKey=<key>`: the search filter, the sort
and the visible columns. It ignores the view when the URL also has a filter or sort of its own,
so the URL carries the key alone. (Checked in Chromium against the installed UI.)
"""

import hashlib
import json
import os
from dataclasses import dataclass

from trainers import keys, tracking

VIEW_TAG = "mlflow.sharedViewState."
TRIAL_COLUMNS = (
    f"tags.`{keys.VALUE}`",
    f"tags.`{keys.SEED}`",
    f"metrics.`{keys.TEST_LOSS}`",
    f"metrics.`{keys.VAL_LOSS}`",
    f"metrics.`{keys.PARAMS_TOTAL}`",
    f"metrics.`{keys.PARAMS_BOTTLENECK}`",
)
MEAN = "test_loss_mean"  # a value run's sort key (sweeps.publish.values logs it)
# The UI orders metric columns by name and draws only those in view: no parameter counts here
# (they are on each value run and in the trials view), so the mean and its interval stay in view.
VALUE_COLUMNS = (
    f"metrics.`{MEAN}`",
    "metrics.`test_loss_std`",
    "metrics.`diff_ci_low`",
    "metrics.`diff_ci_high`",
    "metrics.`n`",
    "metrics.`p_best`",
    "metrics.`rank`",
    f"tags.`{keys.VERDICT}`",
    f"tags.`{keys.DECISION}`",
)
BITS = "metrics.`test_bits_per_byte`"
DEFAULT_PORT = "5000"  # `make ui`'s
WORKFLOW = "machine_learning"  # the UI's "Model training" mode


@dataclass(frozen=True)
class View:
    """One saved runs-table view: which runs, sorted by which metric, with which columns."""

    name: str  # unique per experiment: its share key is a hash of it
    search: str
    sort_metric: str
    columns: tuple[str, ...]

    def state(self) -> dict:
        return {
            "searchFilter": self.search,
            "orderByKey": f"metrics.`{self.sort_metric}`",
            "orderByAsc": True,
            "selectedColumns": list(self.columns),
            "runsHiddenMode": "SHOW_ALL",
            "viewMaximized": False,
        }

    def key(self) -> str:
        return hashlib.sha256(f"ovat-leaderboard/{self.name}".encode()).hexdigest()[:32]


def runs_filter(sweep_id: str, role: str, value: str | None = None) -> str:
    """The sweep's runs of one role (value or trial): no follow-ups, no probe reruns, no other
    sweep's runs; with `value`, that value's alone."""
    search = f"tags.`{keys.SWEEP_ID}` = '{sweep_id}' and tags.`{keys.ROLE}` = '{role}'"
    return search + (f" and tags.`{keys.VALUE}` = '{value}'" if value is not None else "")


def values_view(sweep_id: str, in_bytes: bool = False) -> View:
    """The ranking: one row per value, by mean test loss (in bits per byte beside it too, for a
    language model's sweep)."""
    columns = (*VALUE_COLUMNS[:2], BITS, *VALUE_COLUMNS[2:]) if in_bytes else VALUE_COLUMNS
    return View(sweep_id, runs_filter(sweep_id, keys.ROLE_VALUE), MEAN, columns)


def trials_view(sweep_id: str, value: str | None = None) -> View:
    """The seeds: one row per trial (of one value where given), by test loss."""
    name = f"{sweep_id}/trials" + (f"/{value}" if value is not None else "")
    search = runs_filter(sweep_id, keys.ROLE_TRIAL, value)
    return View(name, search, keys.TEST_LOSS, TRIAL_COLUMNS)


def ui_base() -> str:
    """Where a person opens the UI: OVAT_UI_URL where the code reaches the server by another
    address (compose: `http://mlflow:5000` inside, 127.0.0.1 on the host), else the tracking
    server itself, else `make ui` on loopback (OVAT_UI_PORT)."""
    if os.environ.get("OVAT_UI_URL"):
        return os.environ["OVAT_UI_URL"].rstrip("/")
    if served():
        return tracking.tracking_uri().rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('OVAT_UI_PORT', DEFAULT_PORT)}"


def served() -> bool:
    """Whether a tracking server serves the UI already (else `make ui` does, over the store)."""
    return tracking.tracking_uri().startswith(("http://", "https://"))


def publish(view: View, experiment: str) -> str:
    """Save a view on the experiment and return its URL."""
    experiment_id = tracking.experiment_id(experiment)
    key = view.key()
    tracking.set_experiment_tag(experiment_id, VIEW_TAG + key, json.dumps(view.state()))
    return url(experiment_id, key)


def url(experiment_id: str, key: str) -> str:
    """The runs page in the UI's "Model training" mode: 3.17 decides between its GenAI overview
    and the runs from `workflowType` (URL, else the browser's last choice, else GenAI), not from
    the experiment's `mlflow.experimentKind` tag, which ovat sets for the API and older UIs."""
    return (
        f"{ui_base()}/#/experiments/{experiment_id}/runs"
        f"?workflowType={WORKFLOW}&viewStateShareKey={key}"
    )


def experiment_url(experiment_id: str) -> str:
    """The experiment's own page, opening on its runs."""
    return f"{ui_base()}/#/experiments/{experiment_id}?workflowType={WORKFLOW}"
