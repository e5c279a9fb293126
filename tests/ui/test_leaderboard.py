"""The MLflow UI as the leaderboard, in a real browser: a real sweep logged to a fresh store,
`mlflow ui` on loopback, and Debian's Chromium driven by Playwright (its own browser download
is not reachable from these machines). With OVAT_SCREENSHOTS=<folder> the test also saves the
leaderboard and the sweep run's page there (`make test-ui` writes the README's pictures)."""

import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest

from bench.browser import CHROMIUM, LAUNCH, READY_MS, SHOWS_ROWS, SHOWS_TEXT
from tests.conftest import ADMIN, PASSWORD, free_port, tiny_plan

pytestmark = pytest.mark.ui

SETTLE_MS = 1000  # after the awaited element shows: the rest of the page's fetches land


@pytest.fixture(scope="module")
def sweep_in_the_ui(ray_session, tmp_path_factory):
    """A 3-value, 2-seed sweep of the tiny model, then `mlflow ui` serving its store."""
    from sweeps.run.tuner import run_plan

    folder = tmp_path_factory.mktemp("ui")
    uri, port = f"sqlite:///{folder}/mlflow.db", free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("OVAT_RESULTS", str(folder / "results"))
        patch.setenv("OVAT_UI_PORT", str(port))
        patch.chdir(folder)
        raw = {"vary": {"model.bottleneck": ["vq", "ffn", "identity"]}, "baseline": "vq"}
        overrides = {"train.epochs": 2, "resources.cpus_per_worker": 0.5}
        published = run_plan(tiny_plan("ui", raw, overrides, seeds=2))
        ui = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "ui", "--backend-store-uri", uri]
            + ["--host", "127.0.0.1", "--port", str(port)],
            stdout=open(folder / "ui.log", "w"),  # noqa: SIM115 (the child owns it)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(f"http://127.0.0.1:{port}/health")
            yield published, mlflow.tracking.MlflowClient(uri), f"http://127.0.0.1:{port}"
        finally:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer in {timeout} s")


@pytest.fixture(scope="module")
def chromium():
    if CHROMIUM is None:
        pytest.fail("make test-ui needs Debian's chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH)
        yield browser
        browser.close()


def open_page(chromium, url: str, ready: str, arg=None, **context):
    """The page once the JavaScript predicate `ready(arg)` holds, or after READY_MS: a fixed
    wait failed CI where the first page of a cold UI took longer than 8 s (the test's own
    assertions then say what is missing)."""
    from playwright.sync_api import TimeoutError as NotReady

    page = chromium.new_context(viewport={"width": 1600, "height": 800}, **context).new_page()
    page.goto(url)
    try:
        page.wait_for_function(ready, arg=arg, timeout=READY_MS)
    except NotReady:
        pass
    page.wait_for_timeout(SETTLE_MS)
    return page


def tidy(page) -> None:
    """For the pictures: the assistant's side panel closed, a long description shown whole."""
    close = page.get_by_role("button", name="Close")
    if close.count():
        close.first.click()
    more = page.get_by_text("Show more", exact=True)
    if more.count():
        more.first.click()
    page.wait_for_timeout(500)


def grid(page) -> dict[str, dict[str, str]]:
    """The runs table as the browser shows it: row index -> column id -> the cell's text."""
    cells = page.eval_on_selector_all(
        ".ag-row .ag-cell",
        "els => els.map(e => [e.closest('.ag-row').getAttribute('row-index'),"
        " e.getAttribute('col-id'), e.innerText])",
    )
    rows: dict[str, dict[str, str]] = {}
    for row, column, text in cells:
        rows.setdefault(row, {})[column] = text
    return dict(sorted(rows.items(), key=lambda item: int(item[0])))


def screenshot(page, name: str) -> None:
    folder = os.environ.get("OVAT_SCREENSHOTS")
    if folder:
        tidy(page)
        page.screenshot(path=str(Path(folder) / name))


def test_the_experiment_opens_on_its_runs_not_the_genai_overview(sweep_in_the_ui, chromium):
    from sweeps.publish import leaderboard

    published, client, _ = sweep_in_the_ui
    experiment = client.get_experiment_by_name("ovat-ui")
    page = open_page(
        chromium,
        leaderboard.experiment_url(experiment.experiment_id),
        SHOWS_TEXT,
        published.sweep_id,
    )
    assert "/runs" in page.url and "overview" not in page.url
    text = page.inner_text("body")
    assert "No data available" not in text  # the GenAI overview's empty charts
    assert published.sweep_id in text  # the sweep's run is listed


def number(cell: str) -> float:
    """A metric cell as the browser shows it; "-" is a number never logged (NaN)."""
    return math.nan if cell.strip() == "-" else float(cell)


def test_the_printed_leaderboard_is_the_ranking_one_row_per_value(sweep_in_the_ui, chromium):
    import pyarrow.parquet as pq

    published, _, _ = sweep_in_the_ui
    table = pq.read_table(published.paths["parquet"]).to_pylist()  # in ranking order
    page = open_page(chromium, published.leaderboard, SHOWS_ROWS, len(table))
    tidy(page)  # the assistant's panel closed: every column of the view in a 1600 px window
    rows = list(grid(page).values())
    names = [row["attributes.`Run Name`"].splitlines()[-1] for row in rows]
    assert names == [f"{r['value']}-sample" for r in table]  # ranking order, one row each
    for row, ranked in zip(rows, table, strict=True):
        for column in ("test_loss_mean", "test_loss_std", "diff_ci_low", "diff_ci_high", "p_best"):
            shown = number(row[f"metrics.`{column}`"])
            assert shown == pytest.approx(ranked[column], rel=1e-12, nan_ok=True), column
        assert int(row["metrics.`n`"]) == ranked["n"] == 2
        assert int(row["metrics.`rank`"]) == ranked["rank"]
        assert row["tags.`ovat.verdict`"] == ranked["verdict"]
    assert any(r["verdict"] != "baseline" and not math.isnan(r["diff_ci_low"]) for r in table)
    screenshot(page, "leaderboard.png")


def test_the_printed_trials_link_lists_every_seed_best_first(sweep_in_the_ui, chromium):
    published, client, _ = sweep_in_the_ui
    trials = client.search_runs(
        [client.get_experiment_by_name("ovat-ui").experiment_id],
        f"tags.`ovat.sweep_id` = '{published.sweep_id}' and tags.`ovat.role` = 'trial'",
    )
    page = open_page(chromium, published.trials, SHOWS_ROWS, len(trials))
    rows = list(grid(page).values())
    by_name = {run.info.run_name: run for run in trials}
    shown = [row["attributes.`Run Name`"].splitlines()[-1] for row in rows]
    assert sorted(shown) == sorted(by_name)  # exactly the sweep's trials: no sweep or value run
    losses = [by_name[name].data.metrics["test_loss"] for name in shown]
    assert losses == sorted(losses)  # best first
    for name, row in zip(shown, rows, strict=True):
        logged = by_name[name].data.metrics["test_loss"]
        assert float(row["metrics.`test_loss`"]) == pytest.approx(logged, rel=1e-12)
        assert row["tags.`ovat.value`"] == by_name[name].data.tags["ovat.value"]
        assert int(row["metrics.`params_total`"]) == int(by_name[name].data.metrics["params_total"])


def test_a_value_rows_page_links_to_its_seeds_one_click_below(sweep_in_the_ui, chromium):
    from sweeps.publish import leaderboard

    published, client, _ = sweep_in_the_ui
    best = published.ranking[0].value
    [value_run] = client.search_runs(
        [client.get_experiment_by_name("ovat-ui").experiment_id],
        f"tags.`ovat.sweep_id` = '{published.sweep_id}' and tags.`ovat.role` = 'value' "
        f"and tags.`ovat.value` = '{best}'",
    )
    url = (
        f"{leaderboard.ui_base()}/#/experiments/{value_run.info.experiment_id}"
        f"/runs/{value_run.info.run_id}?workflowType=machine_learning"
    )
    page = open_page(chromium, url, SHOWS_TEXT, "one run per seed")
    with page.context.expect_page() as opened:  # the description's links open a new tab
        page.get_by_text("Its trials, one run per seed").first.click()
    trials = opened.value
    trials.wait_for_function(SHOWS_ROWS, arg=2, timeout=READY_MS)
    trials.wait_for_timeout(SETTLE_MS)
    rows = list(grid(trials).values())
    names = sorted(row["attributes.`Run Name`"].splitlines()[-1] for row in rows)
    assert names == [f"{best}-sample-s0", f"{best}-sample-s1"]


def test_the_sweeps_run_page_shows_the_ranking(sweep_in_the_ui, chromium):
    from sweeps.publish import leaderboard

    published, client, _ = sweep_in_the_ui
    [sweep] = client.search_runs(
        [client.get_experiment_by_name("ovat-ui").experiment_id],
        f"tags.`ovat.sweep_id` = '{published.sweep_id}' and tags.`ovat.role` = 'sweep'",
    )
    url = (
        f"{leaderboard.ui_base()}/#/experiments/{sweep.info.experiment_id}"
        f"/runs/{sweep.info.run_id}?workflowType=machine_learning"
    )
    page = open_page(chromium, url, SHOWS_TEXT, "verdict")
    text = page.inner_text("body")
    for row in published.ranking:  # the rendered Markdown table of the description
        assert row.value in text and f"{row.test_loss_mean:.4f}" in text
    assert "test loss" in text and "verdict" in text
    screenshot(page, "sweep-run.png")


def test_the_basic_auth_server_refuses_the_page_without_credentials(auth_server, chromium):
    from playwright.sync_api import Error

    refused = chromium.new_context()
    with pytest.raises(Error, match="ERR_INVALID_AUTH_CREDENTIALS"):  # headless: no prompt
        refused.new_page().goto(auth_server)
    assert refused.request.get(auth_server).status == 401
    wrong = chromium.new_context(http_credentials={"username": ADMIN, "password": "wrong"})
    assert wrong.request.get(auth_server).status == 401
    allowed = chromium.new_context(
        http_credentials={"username": ADMIN, "password": PASSWORD}
    ).new_page()
    answer = allowed.goto(auth_server)
    allowed.wait_for_function(SHOWS_TEXT, arg="Experiments", timeout=READY_MS)
    assert answer.status == 200 and "Experiments" in allowed.inner_text("body")
