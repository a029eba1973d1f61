"""Notebook 07's playground in a real JupyterLab, driven by headless Chromium (Playwright).

The notebook (smoke profile) runs all its cells from the Run menu; then, in the page, as a student would:

1. **Train** the first state of the controls (the paper's recipe): the live figure of the first epoch must appear
   within 60 s of the click, the run must finish, and no cell may show an error;
2. **Train** the same configuration again: it is in the run cache now, so its curves must be back within 2 s;
3. move the epochs slider to its end, **Train**, and **Stop** after the first epoch's figure: within 5 s the table
   must list the run as stopped, the kernel must be idle and Train usable again.

Skipped, with the reason, without ``/usr/bin/chromium`` or ``playwright`` (as tests/test_browser.py). A failure
leaves a screenshot and the server's log in the test's ``tmp_path``. The times are measured in
``benchmarks/bench_playground.py``.
"""
from __future__ import annotations

import pytest

from browser_lab import JupyterLab, lab_notebook, launch, missing, prepare_notebooks
from browser_playground import PlaygroundPage

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

FIRST_EPOCH_SECONDS = 60.0
CACHED_SECONDS = 2.0
STOP_SECONDS = 5.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = missing()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("browser_playground")
    paths = prepare_notebooks(folder / "notebooks", ("07_playground",))
    with JupyterLab(folder / "notebooks", folder / "home") as server:
        yield server, paths


def test_the_playground_trains_caches_and_stops_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    server, paths = lab
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            with lab_notebook(server, browser, paths["07_playground"].name, tmp_path) as notebook:
                notebook.open()
                state = notebook.run_all()
                assert not state["errors"], "a cell shows an error:\n" + "\n".join(state["errors"])
                assert state["done"] == state["prompts"] > 0, f"not every cell ran: {state}"
                pg = PlaygroundPage(notebook)

                before = pg.live_src()
                pg.press("Train")
                first = pg.wait_live_change(before, within=FIRST_EPOCH_SECONDS)
                assert first is not None, f"no figure within {FIRST_EPOCH_SECONDS:.0f} s of Train: {pg.status()!r}"
                assert pg.wait_text("table", "finished", within=120), f"the run did not finish: {pg.status()!r}"

                before = pg.live_src()
                pg.press("Train")
                cached = pg.wait_live_change(before, within=CACHED_SECONDS)
                assert cached is not None and pg.wait_text("status", "run cache", within=CACHED_SECONDS), \
                    f"a cached configuration did not come back within {CACHED_SECONDS} s: {pg.status()!r}"
                assert pg.wait_text("table", "cached", within=CACHED_SECONDS)

                assert pg.slider_to_end("epochs") >= 40
                before = pg.live_src()
                pg.press("Train")
                assert pg.wait_live_change(before, within=FIRST_EPOCH_SECONDS) is not None
                pg.press("Stop")
                assert pg.wait_text("table", "stopped", within=STOP_SECONDS), \
                    f"not stopped within {STOP_SECONDS} s: {pg.status()!r}\n{pg.table()}"
                notebook.wait_idle(timeout=STOP_SECONDS)
                assert notebook.kernel_state() == "idle"
                assert pg.wait_buttons(train=True, stop=False, within=STOP_SECONDS), "Train is not usable again"
                errors = notebook.cells()["errors"]
                assert not errors, "a widget callback failed:\n" + "\n".join(errors)
        finally:
            browser.close()
