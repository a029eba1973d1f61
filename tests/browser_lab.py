"""A real JupyterLab driven by headless Chromium through Playwright: what tests/test_browser.py checks and
benchmarks/bench_browser.py times.

:func:`prepare_notebooks` copies notebooks into a folder with their parameters set (papermill, not executed);
:class:`JupyterLab` serves that folder on 127.0.0.1 with a token, with a settings folder of its own (every cell
rendered: no windowing) and without ``JMLKIT_HEADLESS`` (so the widgets are built); :class:`LabNotebook` opens one
notebook in a browser page, runs all its cells from the Run menu, waits for the kernel, reads the error outputs,
and moves each widget control (sliders by keyboard on the focused handle, drop-downs and multi-selects by choosing
another option), timing until the image of the widget's figure changes.

Playwright is imported only when a browser is launched; Chromium is Debian's (``apt-get install -y chromium``):
Playwright cannot download its own browsers here.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHROMIUM = Path("/usr/bin/chromium")
#: The notebooks with widgets.
WIDGET_NOTEBOOKS = ("01_jaccard_losses", "02_label_smoothing", "03_distillation", "04_semi_supervised",
                    "05_soft_labels", "06_calibration")  # 06 last: it reads the runs of the others


def missing() -> str | None:
    """Why the browser cannot run here (``None`` when it can)."""
    if not CHROMIUM.is_file():
        return f"Chromium not found at {CHROMIUM} (apt-get install -y chromium; .ci/run installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (it is in the dev extra: pip install -e '.[dev]')"
    return None


def prepare_notebooks(folder: Path, stems=WIDGET_NOTEBOOKS, *, profile: str = "smoke") -> dict[str, Path]:
    """Copies of ``notebooks/<stem>.ipynb`` in ``folder`` with ``profile`` and an ``output_dir`` under
    ``folder/out`` injected after their parameters cell, as papermill does (without executing them). The output
    folders share a parent, so notebook 06 finds the runs that 02 left there."""
    import papermill

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for stem in stems:
        out[stem] = folder / f"{stem}.ipynb"
        papermill.execute_notebook(str(NOTEBOOKS / f"{stem}.ipynb"), str(out[stem]), prepare_only=True,
                                   parameters={"profile": profile, "output_dir": str(folder / "out" / stem)},
                                   kernel_name="python3", progress_bar=False, log_output=False)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """``python -m jupyterlab`` serving ``root`` on a free port of 127.0.0.1 with a random token; a context manager
    that stops the server (kernels first, then its process group) on exit.

    ``home`` holds the server's own settings, workspaces and runtime files, so the user's JupyterLab settings do not
    apply and nothing is written outside the two folders.
    """

    def __init__(self, root: Path, home: Path, *, start_timeout: float = 180.0) -> None:
        self.root, self.home, self.start_timeout = Path(root), Path(home), start_timeout
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.home / "jupyterlab.log"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("JMLKIT_HEADLESS", "JUPYTER_CONFIG_DIR")}
        settings = self.home / "settings"
        (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True, exist_ok=True)
        (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
            # every cell in the page, not only the visible ones; the notebook's kernel starts without a dialog
            json.dumps({"windowingMode": "none", "autoStartDefaultKernel": True}))
        (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True, exist_ok=True)
        (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env.update(JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(self.home / "workspaces"),
                   JUPYTER_RUNTIME_DIR=str(self.home / "runtime"), JUPYTER_CONFIG_DIR=str(self.home / "config"),
                   JUPYTER_DATA_DIR=str(self.home / "data"),
                   IPYTHONDIR=str(self.home / "ipython"), HF_HUB_OFFLINE="1", MPLBACKEND="Agg",
                   PYTHONUNBUFFERED="1")
        return env

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def start(self) -> JupyterLab:
        self.home.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--LabApp.news_url=", "--ServerApp.terminals_enabled=False",
               # a safety net should the caller die without stop(): idle kernels are culled, then the server exits
               "--MappingKernelManager.cull_idle_timeout=900", "--MappingKernelManager.cull_interval=60",
               "--ServerApp.shutdown_no_activity_timeout=1200"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # CI runs as root in a container
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.root, env=self._env(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # its own process group: the kernels go with it
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self.api("/api/status")
                return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"JupyterLab did not answer within {self.start_timeout:.0f} s:\n{self.log()}")

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.is_file() else ""

    def shutdown_kernels(self) -> None:
        """Shut down every kernel of this server (a notebook closed in the browser keeps its kernel)."""
        try:
            kernels = self.api("/api/kernels") or []
        except OSError:  # the server is gone
            return
        for kernel in kernels:
            try:
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE")
            except OSError:
                pass

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.shutdown_kernels()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        try:  # kernels left in the group (the server is gone)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> JupyterLab:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# JavaScript run in the page: the state of the notebook's cells (prompts, errors) and the widget controls.
_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook shown (a restored layout may hold others)
_CELLS_JS = """() => {
  const PANEL = '%s', NB = PANEL + ' .jp-Notebook';
  const cells = [...document.querySelectorAll(NB + ' .jp-CodeCell')];
  // a cell whose input is hidden (the solutions) shows no prompt: it is judged by its outputs alone
  const prompts = cells.map(c => c.querySelector('.jp-InputArea-prompt')).filter(p => p).map(p => p.textContent);
  const errors = [...document.querySelectorAll(NB + ' .jp-OutputArea-output')]
    .filter(o => o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr'
                 && /Traceback \\(most recent call last\\)|^\\w*(Error|Exception):/m.test(o.textContent))
    .map(o => o.textContent.slice(0, 3000));
  const status = (document.querySelector(PANEL + ' .jp-Notebook-ExecutionIndicator') || {dataset: {}}).dataset.status;
  return {n: cells.length, prompts: prompts.length, running: prompts.filter(p => p.includes('*')).length,
          done: prompts.filter(p => /\\[\\d+\\]/.test(p)).length, errors, status};
}""" % _PANEL

_IMAGE_JS = """(root) => { const i = root.querySelector('.widget-output img, .jupyter-widgets-output-area img');
                            return i ? i.src : null; }"""


@dataclass
class Move:
    """One move of a widget control: which, and how long until the figure under it changed (``None``: it did not
    within the time allowed, or the control was disabled)."""

    control: str
    seconds: float | None
    disabled: bool = False  # the control could not be moved (02's window under uniform smoothing)


class LabNotebook:
    """One notebook of a :class:`JupyterLab` open in a Chromium page."""

    def __init__(self, lab: JupyterLab, browser: Any, name: str) -> None:
        self.lab, self.name = lab, name
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)

    def kernel_state(self) -> str | None:
        """The execution state of this notebook's kernel, as the server reports it (``None``: no kernel yet)."""
        for session in self.lab.api("/api/sessions") or []:
            if session.get("path") == self.name and session.get("kernel"):
                return session["kernel"].get("execution_state")
        return None

    def open(self, *, timeout: float = 300.0) -> LabNotebook:
        """Open the notebook; wait until every code cell is in the page and its kernel is idle."""
        expected = sum(c["cell_type"] == "code" for c in json.loads((self.lab.root / self.name).read_text())["cells"])
        url = f"{self.lab.url}/lab/tree/{self.name}?reset&token={self.lab.token}"  # reset: no restored layout
        self.page.goto(url, timeout=timeout * 1000)
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = {**self.cells(), "kernel": self.kernel_state()}
            if state["n"] == expected and state["kernel"] == "idle" and state["status"] == "idle":
                return self
            time.sleep(0.5)
        raise TimeoutError(f"{self.name}: not ready within {timeout:.0f} s ({expected} code cells expected): {state}")

    def cells(self) -> dict[str, Any]:
        return self.page.evaluate(_CELLS_JS)

    def run_all(self, *, timeout: float = 1200.0) -> dict[str, Any]:
        """Run all cells from the Run menu; wait until no cell is queued or running and either every code cell has
        an execution count or an error is shown (run-all stops there). Returns :meth:`cells`."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        deadline, settled = time.monotonic() + timeout, 0
        state = self.cells()
        while time.monotonic() < deadline:
            time.sleep(1.0)
            state = self.cells()
            finished = state["running"] == 0 and (state["done"] == state["prompts"] or state["errors"])
            settled = settled + 1 if finished and state["status"] == "idle" else 0
            if settled >= 3:  # three quiet polls: the kernel has nothing queued
                return state
        raise TimeoutError(f"{self.name}: run-all did not finish within {timeout:.0f} s: {state}")

    def controls(self) -> list[tuple[str, Any, Any]]:
        """``(description, control element, widget root)`` of every slider, then every drop-down and multi-select,
        of the interactive widgets (sliders first: a drop-down may disable a slider, as 02's uniform smoothing
        disables its window)."""
        sliders, selects = [], []
        for root in self.page.query_selector_all(f"{_PANEL} .jp-Notebook .widget-interact"):
            for el in root.query_selector_all(".widget-slider, .widget-dropdown, .widget-select-multiple"):
                label = el.query_selector(".widget-label")
                kind = sliders if el.query_selector(".noUi-handle") is not None else selects
                kind.append(((label.inner_text() if label else "?").strip(), el, root))
        return sliders + selects

    def image(self, root: Any) -> str | None:
        """The ``src`` of the figure a widget shows (``None``: no figure)."""
        return root.evaluate(_IMAGE_JS)

    def move(self, control: Any, root: Any, description: str, *, within: float = 2.0) -> Move:
        """Move one control one step (a slider: an arrow key on its focused handle, toward the middle; a drop-down
        or multi-select: another option) and time until the widget's image changes, at most ``within`` seconds."""
        if control.evaluate("e => !!e.querySelector('[disabled], select:disabled')"):
            return Move(description, None, disabled=True)
        before = self.image(root)
        handle = control.query_selector(".noUi-handle")
        if handle is not None:
            now = float(handle.get_attribute("aria-valuenow"))
            high = float(handle.get_attribute("aria-valuemax"))
            low = float(handle.get_attribute("aria-valuemin"))
            handle.focus()
            start = time.perf_counter()
            handle.press("ArrowRight" if now - low <= high - now else "ArrowLeft")
        else:
            select = control.query_selector("select")
            options = select.eval_on_selector_all("option", "os => os.map(o => o.selected)")
            if control.evaluate("e => e.classList.contains('widget-select-multiple')"):
                chosen = [i for i, s in enumerate(options) if s]
                pick = [i for i in range(len(options)) if i not in chosen][:1] + chosen[:1] if len(chosen) < len(
                    options) else chosen[:-1]
            else:
                pick = [(options.index(True) + 1) % len(options)]
            start = time.perf_counter()
            select.select_option(index=pick)
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(f"([root, before]) => ({_IMAGE_JS})(root) !== before && "
                                        f"({_IMAGE_JS})(root) !== null", arg=[root, before], timeout=within * 1000)
            return Move(description, time.perf_counter() - start)
        except PlaywrightTimeout:
            return Move(description, None)

    def wait_idle(self, *, timeout: float = 60.0) -> None:
        self.page.wait_for_selector(f'{_PANEL} .jp-Notebook-ExecutionIndicator[data-status="idle"]',
                                    timeout=timeout * 1000)

    def close(self) -> None:
        self.context.close()


def launch(playwright: Any) -> Any:
    """Headless Chromium of the system (Playwright's own download is not available here)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])


@contextlib.contextmanager
def lab_notebook(lab: JupyterLab, browser: Any, name: str, failures: Path,
                 note: str = "screenshot and server log: {}") -> Iterator[LabNotebook]:
    """:class:`LabNotebook` ``name`` in ``browser``; afterwards the page is closed and ``lab``'s kernels shut down.

    On any failure inside, :func:`copy_failure` leaves the screenshot and server log in ``failures`` and
    ``note.format(failures)`` is printed, before the error goes on.
    """
    notebook = LabNotebook(lab, browser, name)
    try:
        yield notebook
    except BaseException:
        print(note.format(copy_failure(notebook, failures)))
        raise
    finally:
        notebook.close()
        lab.shutdown_kernels()


def copy_failure(notebook: LabNotebook, folder: Path) -> Path:
    """A screenshot of the page and the server's log in ``folder``: what a failed test leaves to look at."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        notebook.page.screenshot(path=str(folder / f"{Path(notebook.name).stem}.png"), full_page=True)
    except Exception as error:  # the page or the browser is gone
        (folder / "screenshot-failed.txt").write_text(repr(error))
    if notebook.lab.log_path.is_file():
        shutil.copy(notebook.lab.log_path, folder / "jupyterlab.log")
    return folder
