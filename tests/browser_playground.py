"""The playground of notebook 07 in a real JupyterLab page: what tests/test_browser_playground.py checks and
benchmarks/bench_playground.py times (``--browser``) and photographs for the README.

:class:`PlaygroundPage` finds the playground's parts in an open :class:`~browser_lab.LabNotebook` by the CSS
classes :class:`jmlkit.plot.Playground` gives them (``jmlkit-playground-live``, ``-status``, ``-table``) and its
buttons by their text, and waits for what a student would wait for: the live figure to change, the status or the
table to say something.
"""
from __future__ import annotations

import time
from typing import Any

from browser_lab import _PANEL, LabNotebook

_LIVE = f"{_PANEL} .jmlkit-playground-live"
_STATUS = f"{_PANEL} .jmlkit-playground-status"
_TABLE = f"{_PANEL} .jmlkit-playground-table"
_SRC_JS = "(sel) => { const i = document.querySelector(sel); return i ? i.src : null; }"


class PlaygroundPage:
    """The playground widget of notebook 07 in ``notebook``'s page."""

    def __init__(self, notebook: LabNotebook) -> None:
        self.notebook, self.page = notebook, notebook.page

    def button(self, text: str) -> Any:
        return self.page.locator(f"{_PANEL} button.jupyter-button", has_text=text).first

    def live_src(self) -> str | None:
        return self.page.evaluate(_SRC_JS, _LIVE)

    def status(self) -> str:
        return self.page.locator(_STATUS).inner_text()

    def table(self) -> str:
        element = self.page.query_selector(_TABLE)
        return element.inner_text() if element else ""

    def press(self, text: str) -> float:
        """Click the button ``text``; returns the time of the click (``time.perf_counter``)."""
        self.button(text).scroll_into_view_if_needed()
        start = time.perf_counter()
        self.button(text).click()
        return start

    def wait_live_change(self, before: str | None, *, within: float) -> float | None:
        """Seconds until the live figure differs from ``before`` (``None``: not within ``within`` seconds)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        start = time.perf_counter()
        try:
            self.page.wait_for_function(f"([sel, before]) => {{ const s = ({_SRC_JS})(sel); "
                                        "return s !== null && s !== '' && s !== before; }",
                                        arg=[_LIVE, before], timeout=within * 1000)
            return time.perf_counter() - start
        except PlaywrightTimeout:
            return None

    def wait_buttons(self, *, train: bool, stop: bool, within: float) -> bool:
        """Whether Train and Stop are enabled as asked within ``within`` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.button("Train").is_enabled() == train and self.button("Stop").is_enabled() == stop:
                return True
            time.sleep(0.1)
        return False

    def wait_text(self, where: str, text: str, *, within: float) -> bool:
        """Whether the status (``where="status"``) or the table (``"table"``) shows ``text`` within ``within`` s."""
        selector = {"status": _STATUS, "table": _TABLE}[where]
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            element = self.page.query_selector(selector)
            if element is not None and text in element.inner_text():
                return True
            time.sleep(0.1)
        return False

    def slider_to_end(self, description: str) -> float:
        """Move the slider labelled ``description`` to its maximum (the End key on its focused handle); its value."""
        control = self.page.locator(f"{_PANEL} .widget-slider", has=self.page.locator(
            ".widget-label", has_text=description)).first
        handle = control.locator(".noUi-handle").first
        handle.scroll_into_view_if_needed()
        handle.focus()
        handle.press("End")
        self.page.wait_for_function("(h) => h.getAttribute('aria-valuenow') === h.getAttribute('aria-valuemax')",
                                    arg=handle.element_handle(), timeout=5000)
        time.sleep(0.3)  # the kernel hears of the new value
        return float(handle.get_attribute("aria-valuenow"))
