"""The MLflow UI as the sweep's leaderboard: a saved view of its trial runs, best first.

MLflow 3.17's UI reads a shared view from the experiment tag `mlflow.sharedViewState.<key>`
when the URL of the runs page carries `viewStateShareKey=<key>`: the search filter, the sort
and the visible columns. It ignores the view when the URL also has a filter or sort of its own,
so the URL carries the key alone. (Checked in Chromium against the installed UI.)
"""

import hashlib
import json
import os

from trainers import keys, tracking

VIEW_TAG = "mlflow.sharedViewState."
SORT_KEY = f"metrics.`{keys.TEST_LOSS}`"
COLUMNS = (
    f"tags.`{keys.VALUE}`",
    f"tags.`{keys.SEED}`",
    f"metrics.`{keys.TEST_LOSS}`",
    f"metrics.`{keys.VAL_LOSS}`",
    f"metrics.`{keys.PARAMS_TOTAL}`",
    f"metrics.`{keys.PARAMS_BOTTLENECK}`",
)
DEFAULT_PORT = "5000"  # `make ui`'s
WORKFLOW = "machine_learning"  # the UI's "Model training" mode


def trials_filter(sweep_id: str) -> str:
    """The sweep's trial runs only: no follow-ups, no probe reruns, no other sweep's trials."""
    return f"tags.`{keys.SWEEP_ID}` = '{sweep_id}' and tags.`{keys.ROLE}` = '{keys.ROLE_TRIAL}'"


def view_state(sweep_id: str) -> dict:
    return {
        "searchFilter": trials_filter(sweep_id),
        "orderByKey": SORT_KEY,
        "orderByAsc": True,
        "selectedColumns": list(COLUMNS),
        "runsHiddenMode": "SHOW_ALL",
        "viewMaximized": False,
    }


def view_key(sweep_id: str) -> str:
    return hashlib.sha256(f"ovat-leaderboard/{sweep_id}".encode()).hexdigest()[:32]


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


def publish_view(sweep_id: str, experiment: str) -> str:
    """Save the sweep's leaderboard view on its experiment and return its URL."""
    experiment_id = tracking.experiment_id(experiment)
    key = view_key(sweep_id)
    tracking.set_experiment_tag(experiment_id, VIEW_TAG + key, json.dumps(view_state(sweep_id)))
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
