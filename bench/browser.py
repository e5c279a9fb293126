"""The leaderboard as a person opens it: Debian's Chromium, driven by Playwright, timed from the
URL to the runs table showing its rows (`make test-ui` checks what those rows say)."""

import contextlib
import shutil
import time
from collections.abc import Iterator

CHROMIUM = shutil.which("chromium")
LAUNCH = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
READY_MS = 120_000  # the most a cold UI on a slow, busy machine may take to render a page
SHOWS_TEXT = "text => document.body.innerText.includes(text)"
SHOWS_ROWS = (  # the grid has rendered n rows (pinned rows repeat a row-index)
    "n => new Set([...document.querySelectorAll('.ag-row .ag-cell')]"
    ".map(e => e.closest('.ag-row').getAttribute('row-index'))).size >= n"
)


@contextlib.contextmanager
def chromium() -> Iterator:
    if CHROMIUM is None:
        raise SystemExit(
            "bench: the leaderboard is opened in Debian's chromium: apt-get install chromium"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH)
        try:
            yield browser
        finally:
            browser.close()


def seconds_to_rows(browser, url: str, rows: int) -> float:
    """From opening `url` in a fresh browser context (no cache) to its table showing `rows`."""
    context = browser.new_context(viewport={"width": 1600, "height": 800})
    try:
        page = context.new_page()
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_function(SHOWS_ROWS, arg=rows, timeout=READY_MS)
        return time.perf_counter() - started
    finally:
        context.close()
