"""Every MLflow call ovat makes, in one place.

Only the sweep driver process writes to MLflow (see `sweeps.run.mlflow_callback`): trials report
to Tune and the driver logs for them, so concurrent trials never contend for the SQLite store.
"""

import contextlib
import functools
import importlib.metadata
import io
import logging
import os
import platform
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from trainers import keys

DEFAULT_URI = "sqlite:///mlflow.db"
BATCH = 100  # MLflow's log_batch accepts at most 100 params per call


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def store_exists() -> bool:
    """Whether the tracking store holds anything yet: a SQLite file that is not there has no
    runs, and reading it would create it (a plan must leave no store behind)."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).is_file()
    return True


class RunNotFound(LookupError):
    """No run by that id or name, or a run without the artifact asked for."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TrackingUnavailable(ConnectionError):
    """The tracking store cannot be reached or written: said before any trial starts."""


def check_reachable(timeout_s: float = 10.0) -> str:
    """Fail fast and clearly, instead of after MLflow's minutes of retries mid-sweep."""
    uri = tracking_uri()
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
                pass
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise TrackingUnavailable(
                f"MLflow tracking server {uri} is not reachable ({reason}); start it "
                "(`make server` serves ./mlflow.db on 127.0.0.1:5000) or unset "
                "MLFLOW_TRACKING_URI to use ./mlflow.db directly"
            ) from None
    elif parsed.scheme == "sqlite":
        folder = Path(uri.removeprefix("sqlite:///")).resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise TrackingUnavailable(f"MLflow store {uri}: folder {folder} is not writable")
    return uri


def client() -> MlflowClient:
    mlflow.set_tracking_uri(tracking_uri())
    return MlflowClient(tracking_uri())


# MLflow 3 opens an experiment on its GenAI overview (traces) unless it is marked as model
# training; ovat's experiments are, so the UI opens on their runs.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


_EXPERIMENT_IDS: dict[tuple[str, str], str] = {}  # (tracking URI, name) -> id, once checked


def experiment_id(name: str) -> str:
    """The experiment's id, made (marked as model training) where it does not exist yet. Known
    once per store and process: a driver opening thousands of trial runs asked the store for it
    before each."""
    key = (tracking_uri(), name)
    if key not in _EXPERIMENT_IDS:
        _EXPERIMENT_IDS[key] = _looked_up_experiment(name)
    return _EXPERIMENT_IDS[key]


def forget_experiment(name: str) -> None:
    _EXPERIMENT_IDS.pop((tracking_uri(), name), None)


def _looked_up_experiment(name: str) -> str:
    existing = client().get_experiment_by_name(name)
    if existing is None:
        try:
            return client().create_experiment(name, tags=dict([EXPERIMENT_KIND]))
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            existing = client().get_experiment_by_name(name)  # a concurrent writer made it
    if existing.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:
        client().set_experiment_tag(existing.experiment_id, *EXPERIMENT_KIND)
    return existing.experiment_id


def experiment_name(experiment: str) -> str:
    return client().get_experiment(experiment).name


def set_experiment_tag(experiment: str, key: str, value: str) -> None:
    client().set_experiment_tag(experiment, key, value)


def git(*args: str) -> str:
    """A git command's output in ovat's own checkout; "" outside one."""
    try:
        out = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def git_commit() -> str:
    return git("rev-parse", "HEAD")


@functools.cache
def source_tags() -> dict[str, str]:
    """What the UI's Source column shows, once per process: ovat, its commit, dirty or not."""
    commit = git_commit()
    dirty = bool(git("status", "--porcelain", "--untracked-files=no")) if commit else False
    return {
        "mlflow.source.name": f"ovat@{commit[:8]}{'+dirty' if dirty else ''}" if commit else "ovat",
        "mlflow.source.type": "LOCAL",
        "mlflow.source.git.commit": commit,
        keys.GIT_DIRTY: str(dirty).lower(),
        keys.ENV_PYTHON: platform.python_version(),
        **{key: package_version(name) for key, name in ENV_PACKAGES.items()},
    }


ENV_PACKAGES = {keys.ENV_TORCH: "torch", keys.ENV_RAY: "ray", keys.ENV_MLFLOW: "mlflow"}


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def installed_packages() -> str:
    """`name==version` of every installed distribution, sorted: the environment to rebuild."""
    found = {
        f"{d.metadata['Name']}=={d.version}"
        for d in importlib.metadata.distributions()
        if d.metadata["Name"]
    }
    return "\n".join(sorted(found, key=str.lower)) + "\n"


def code_diff() -> str:
    """The uncommitted changes of ovat's checkout ("" when clean or not a checkout)."""
    return git("diff", "HEAD")


def log_text(run_id: str, text: str, artifact_file: str) -> None:
    client().log_text(run_id, text, artifact_file)


def log_dataset(run_id: str, name: str, digest: str, source: str) -> None:
    """The data a trial trained on, as an MLflow dataset input (the UI's Dataset column)."""
    dataset = Dataset(name=name, digest=digest, source_type="local", source=source)
    context = InputTag(key="mlflow.data.context", value="training")
    client().log_inputs(run_id, datasets=[DatasetInput(dataset=dataset, tags=[context])])


def create_run(
    experiment: str, name: str, tags: dict[str, str], parent_id: str | None = None
) -> str:
    """A new run with its tags (set atomically with it), nested under `parent_id` if given;
    its source is ovat at this git commit (and whether the tree had uncommitted changes)."""
    tags = {**tags, **source_tags()}
    if parent_id:
        tags["mlflow.parentRunId"] = parent_id
    tags = {k: str(v) for k, v in tags.items()}
    try:
        run = client().create_run(experiment_id(experiment), run_name=name, tags=tags)
    except MlflowException as error:  # the experiment this process knew is gone (`mlflow gc`)
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        forget_experiment(experiment)
        run = client().create_run(experiment_id(experiment), run_name=name, tags=tags)
    return run.info.run_id


def start_run(
    experiment: str,
    name: str,
    tags: dict[str, str],
    params: dict | None = None,
    parent_id: str | None = None,
) -> str:
    run_id = create_run(experiment, name, tags, parent_id)
    log_params(run_id, params or {})
    return run_id


def tag_query(tags: dict[str, str]) -> str:
    """The search filter of runs carrying exactly these tag values."""
    return " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())


def find_run(tags: dict[str, str], experiment: str = "") -> str | None:
    """The run with exactly these ovat tags, so a resumed trial continues its own run; only in
    `experiment` where named (one request where every experiment's listing took more)."""
    where = [experiment_id(experiment)] if experiment else _all_experiments()
    runs = client().search_runs(where, tag_query(tags), max_results=1)
    return runs[0].info.run_id if runs else None


def log_params(run_id: str, params: dict) -> None:
    items = [Param(k, str(v)) for k, v in params.items()]
    for start in range(0, len(items), BATCH):
        client().log_batch(run_id, params=items[start : start + BATCH])


def log_metrics(
    run_id: str, metrics: dict[str, float], step: int, timestamp_ms: int | None = None
) -> None:
    """`timestamp_ms`: when the value was measured, so a delayed or repeated write is the same
    metric row (MLflow ignores an identical one) rather than a second point."""
    now = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    for start in range(0, len(items), BATCH):
        client().log_batch(run_id, metrics=items[start : start + BATCH])


BATCH_ENTITIES = 1000  # log_batch: metrics, params and tags together, tags at most BATCH


def log_result(
    run_id: str,
    metrics: dict[str, float],
    step: int,
    timestamp_ms: int,
    points: list | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """A trial's reported result in one log_batch where it fits (its tags, its per-step
    `points` [[name, step, value], ...] and its metrics at `step`), so the driver makes one
    request per result, not three: a tracking server answers each in tens of milliseconds.
    MLflow writes one batch in one transaction, so a reader sees the result whole."""
    items = [Metric(n, float(v), timestamp_ms, int(at)) for n, at, v in points or ()]
    items += [Metric(k, float(v), timestamp_ms, step) for k, v in metrics.items()]
    labels = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    while items or labels:
        batch_tags, labels = labels[:BATCH], labels[BATCH:]
        room = BATCH_ENTITIES - len(batch_tags)
        client().log_batch(run_id, metrics=items[:room], tags=batch_tags)
        items = items[room:]


def set_tags(run_id: str, tags: dict[str, str]) -> None:
    client().log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_image(run_id: str, path: Path, key: str) -> None:
    """A picture in the run's images (mlflow.log_image with a key: the UI's image view)."""
    from PIL import Image

    with Image.open(path) as image:
        client().log_image(run_id, image.convert("RGB"), key=key, step=0, synchronous=True)


def register_model(run_id: str, model, example, name: str) -> str:
    """Log `model` (a torch module) on the run as an MLflow PyTorch model, with its input
    example and the signature MLflow infers from it, and register it as a version of `name`.
    Returns the version."""
    import mlflow.pytorch
    import torch

    mlflow.set_tracking_uri(tracking_uri())
    said = io.StringIO()  # MLflow prints "Successfully registered model ...": a log line
    with (
        contextlib.redirect_stdout(said),
        contextlib.redirect_stderr(said),
        mlflow.start_run(run_id=run_id),  # the run stays as it was: its status is set after
    ):
        info = mlflow.pytorch.log_model(
            model,
            name="model",
            input_example=example,
            registered_model_name=name,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            serialization_format="pickle",  # a module (any batch size), not an exported graph
        )
    for line in said.getvalue().splitlines():
        logging.getLogger("mlflow.registry").info(line)
    return str(info.registered_model_version)


def log_table(run_id: str, columns: dict[str, list], artifact_file: str) -> None:
    """A table MLflow itself reads back (`mlflow.load_table`), beside the files."""
    client().log_table(run_id, columns, artifact_file)


def delete_tag(run_id: str, key: str) -> None:
    """Remove a tag if the run has it (a no-op otherwise)."""
    if key in client().get_run(run_id).data.tags:
        client().delete_tag(run_id, key)


def log_artifacts(run_id: str, folder: Path, artifact_path: str | None = None) -> None:
    client().log_artifacts(run_id, str(folder), artifact_path)


def log_artifact(run_id: str, path: Path) -> None:
    client().log_artifact(run_id, str(path))


def end_run(run_id: str, failed: bool = False, status: str = "") -> None:
    """FINISHED, FAILED, or an explicit status (KILLED for an interrupted sweep)."""
    status = status or RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
    client().set_terminated(run_id, status)


def run_status(run_id: str) -> str:
    return client().get_run(run_id).info.status


EXPERIMENTS_PAGE = 1000  # MLflow's most per search_experiments call


def _all_experiments() -> list[str]:
    """Every experiment's id, page by page: one call returns at most a page, and on a shared
    server a sweep's experiment past the first would be missed (its trials' runs not found, a
    resume opening duplicates)."""
    ids, token = [], None
    while True:
        page = client().search_experiments(max_results=EXPERIMENTS_PAGE, page_token=token)
        ids += [e.experiment_id for e in page]
        token = page.token
        if not token:
            return ids


RUNS_PAGE = 10_000  # runs per search_runs call; MLflow caps one call at 50,000


def _all_runs(query: str) -> list:
    """Every run (any experiment) that `query` matches, oldest first, page by page: one call
    returned 50,000 at most, and a sweep of more trials (or a store of many sweeps, where
    `runs_with_source` looks) was cut off without a word."""
    experiments, runs, token = _all_experiments(), [], None  # one listing for every page
    while True:
        page = client().search_runs(
            experiments,
            query,
            max_results=RUNS_PAGE,
            order_by=["attributes.start_time ASC", "attributes.run_id ASC"],
            page_token=token,
        )
        runs += page
        token = page.token
        if not token:
            return runs


def search_runs(tags: dict[str, str]) -> list:
    """All runs (any experiment) whose tags match, oldest first."""
    return _all_runs(tag_query(tags))


def sweep_runs(sweep_id: str, role: str = keys.ROLE_TRIAL) -> list:
    """A sweep's trial runs (or, with role="sweep", its own run), oldest first."""
    return search_runs({keys.SWEEP_ID: sweep_id, keys.ROLE: role})


def latest_sweep_id(ablation: str = "") -> str | None:
    """The newest sweep's id (of `ablation` where given: a name the caller has checked); a
    placement probe is not a sweep a user means by `latest`."""
    scope = f"and tags.`{keys.ABLATION}` = '{ablation}'" if ablation else ""
    runs = client().search_runs(
        _all_experiments(),
        f"tags.`{keys.ROLE}` = '{keys.ROLE_SWEEP}' "
        f"and tags.`{keys.ABLATION}` != '{keys.PROBE_ABLATION}' {scope}",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].data.tags.get(keys.SWEEP_ID) if runs else None


def resolve_run(ref: str):
    """A run by id, or by name (the newest of that name); a clear error when neither exists."""
    try:
        return client().get_run(ref)
    except mlflow.exceptions.MlflowException:
        pass
    runs = client().search_runs(
        _all_experiments(),
        f"attributes.run_name = '{ref}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    if runs:
        return runs[0]
    recent = client().search_runs(
        _all_experiments(),
        f"tags.`{keys.ROLE}` != '{keys.ROLE_SWEEP}'",
        max_results=5,
        order_by=["attributes.start_time DESC"],
    )
    hint = ", ".join(r.info.run_name for r in recent) or "none yet: run `make sweep` first"
    raise RunNotFound(f"no run {ref!r} in {tracking_uri()}; recent runs: {hint}")


def download_checkpoint(run_id: str, destination: Path) -> Path:
    names = {a.path for a in client().list_artifacts(run_id)}
    if "checkpoint" not in names:
        raise RunNotFound(f"run {run_id} has no checkpoint artifact (artifacts: {sorted(names)})")
    return Path(client().download_artifacts(run_id, "checkpoint", str(destination)))


def runs_with_source() -> list:
    """Every follow-up run (eval, transplant, finetune): those tagged with a source run."""
    return _all_runs(f"tags.`{keys.SOURCE_RUN}` LIKE '%'")
