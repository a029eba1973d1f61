"""The notebooks with widgets (01 to 06) in a real JupyterLab, driven by headless Chromium (Playwright).

One JupyterLab serves copies of the six notebooks, parameterised to the smoke profile with their output folders
side by side in a temporary folder (so 06 compares the runs that 02 to 05 just trained there). For each notebook,
in a browser page: open it, run all cells from the Run menu, wait until the kernel is idle, check that no cell shows
an error, then move every control of its widgets (each slider one keyboard step on its focused handle, then each
drop-down and multi-select to another option) and check that the widget's figure is redrawn (its image changes)
within 2 s.

Generous limits elsewhere (a busy 2-core machine): 3 min for the server to answer, 5 min for a notebook to open
with an idle kernel, 20 min for run-all. Skipped, with the reason, without ``/usr/bin/chromium`` or ``playwright``.
A failure leaves a screenshot of the page and the server's log in the test's ``tmp_path``. A first test runs the
same checks on a small notebook they must fail on (an error, a widget whose figure does not change).
The time of a redraw is measured in ``benchmarks/bench_browser.py``.
"""
from __future__ import annotations

import pytest

from browser_lab import WIDGET_NOTEBOOKS, JupyterLab, lab_notebook, launch, missing, prepare_notebooks

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

#: The controls of each notebook's widgets, sliders first, as the page labels them.
CONTROLS = {
    "01_jaccard_losses": ["target y", "smooth", "target y1", "target y2"],
    "02_label_smoothing": ["ε", "window", "scene", "smoothing", "class"],
    "03_distillation": ["T"],
    "04_semi_supervised": ["threshold"],
    "05_soft_labels": ["slice", "band", "class"],
    "06_calibration": ["runs", "metric"],
}
#: The longest a widget may take to show its new figure after a control moved.
REDRAW_SECONDS = 2.0


#: A notebook the checks must fail on: a widget whose figure never changes, then a cell that raises.
BROKEN = [
    "import ipywidgets as widgets\n"
    "from IPython.display import Image, display\n"
    "from matplotlib.figure import Figure\n"
    "from jmlkit.plot import render_png\n"
    "png = render_png(Figure(figsize=(1, 1)))\n"
    "widgets.interactive(lambda still: display(Image(data=png, format='png')), still=widgets.IntSlider(2, 0, 5))",
    "raise ValueError('the browser test must see this')",
    "1 + 1",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = missing()
    if reason:
        pytest.skip(reason)
    import nbformat

    folder = tmp_path_factory.mktemp("browser")
    paths = prepare_notebooks(folder / "notebooks", WIDGET_NOTEBOOKS)
    paths["broken"] = folder / "notebooks" / "broken.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in BROKEN])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, paths["broken"])
    with JupyterLab(folder / "notebooks", folder / "home") as server:
        yield server, paths


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


def test_the_checks_see_an_error_and_a_figure_that_does_not_change(lab, browser, tmp_path):
    server, paths = lab
    with lab_notebook(server, browser, paths["broken"].name, tmp_path) as notebook:
        state = notebook.open().run_all(timeout=300)
        assert len(state["errors"]) == 1 and "the browser test must see this" in state["errors"][0]
        assert state["done"] == 2 < state["prompts"] == 3  # run-all stopped at the error
        [(name, control, root)] = notebook.controls()
        assert name == "still" and notebook.image(root)
        move = notebook.move(control, root, name, within=REDRAW_SECONDS)
        assert move.seconds is None and not move.disabled  # moved, but the same image came back


@pytest.mark.parametrize("stem", WIDGET_NOTEBOOKS)  # in this order: 06 reads the runs of 02 to 05
def test_notebook_runs_and_its_widgets_redraw_in_jupyterlab(lab, browser, stem, tmp_path):
    server, paths = lab
    with lab_notebook(server, browser, paths[stem].name, tmp_path) as notebook:
        notebook.open()
        state = notebook.run_all()
        assert not state["errors"], f"{stem}: a cell shows an error:\n" + "\n".join(state["errors"])
        assert state["done"] == state["prompts"] > 0, f"{stem}: not every cell ran: {state}"

        controls = notebook.controls()
        assert [name for name, _, _ in controls] == CONTROLS[stem]
        assert all(notebook.image(root) for _, _, root in controls), f"{stem}: a widget has no first figure"
        moves = [notebook.move(control, root, name, within=REDRAW_SECONDS) for name, control, root in controls]
        late = [m.control for m in moves if m.seconds is None]
        assert not late, f"{stem}: no new figure within {REDRAW_SECONDS} s after moving {late}"

        notebook.wait_idle()
        errors = notebook.cells()["errors"]
        assert not errors, f"{stem}: a widget callback failed:\n" + "\n".join(errors)
