"""Tests of the HTML report of a batch (jmlkit.runner.report / ``python -m jmlkit report``).

The repository's notebooks are executed once per worker in the smoke profile
(:func:`smoke_batch`, shared with tests/test_student.py); the report of that batch is
checked by parsing its HTML: every page and every file the index points at exists, pages
load nothing from the network (formulas are MathML), ok runs show no traceback. A second tiny batch
has a failing notebook, a run without an executed notebook and an unreadable one.
"""
from __future__ import annotations

import html.parser
import json
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import nbformat
import pytest
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from jmlkit.__main__ import main
from jmlkit.runner.mathml import render_markdown_with_mathml
from jmlkit.runner.report import (
    INDEX_FILE,
    ReportEntry,
    find_runs,
    format_duration,
    format_number,
    headline_table,
    main_report,
    notebook_intro,
    render_page,
    sanitize_html,
    write_report,
)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "JMLKIT_HEADLESS": "1"}


def run_batch(out: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m jmlkit run ... --out OUT`` in a subprocess (figures beside OUT, never in the repository's)."""
    cmd = [sys.executable, "-m", "jmlkit", "run", *args, "--out", str(out), "--figures", str(out.parent / "figures"),
           "--jobs", "1", "--no-progress"]
    return subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=1800)


def smoke_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's notebooks executed by ``jmlkit run --profile smoke``, once per pytest session.

    The batch lives in the temporary folder that the session's xdist workers share, built under a file
    lock by the first worker that asks and read by the others: the xdist group ``smoke_batch`` should
    already keep its tests on one worker, but pytest 9 with xdist 3.8 no longer groups them.
    """
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = root / "smoke_batch" / "runs"
    with FileLock(str(root / "smoke_batch.lock")):
        if not (out / "summary.csv").is_file():
            proc = run_batch(out, "--profile", "smoke", "--notebooks-dir", str(REPO / "notebooks"))
            assert (out / "summary.csv").is_file(), proc.stdout + proc.stderr
    return out


class _Links(html.parser.HTMLParser):
    """The href/src attributes and the element ids of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.refs.append((tag, value))
            if name == "id" and value is not None:
                self.ids.add(value)


def links(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def check_links(page: Path) -> list[str]:
    """Every relative href/src of ``page`` that points at no file (or, for ``#x``, at no id); [] when all resolve."""
    found = links(page)
    broken = []
    for tag, ref in found.refs:
        parsed = urllib.parse.urlparse(ref)
        if parsed.scheme in ("http", "https", "data") or ref.startswith("//"):
            continue
        if not parsed.path:
            if urllib.parse.unquote(parsed.fragment) not in found.ids:
                broken.append(ref)
            continue
        if not (page.parent / urllib.parse.unquote(parsed.path)).is_file():
            broken.append(ref)
    return broken


def remote(page: Path) -> list[str]:
    return [ref for _, ref in links(page).refs if urllib.parse.urlparse(ref).scheme in ("http", "https")
            or ref.startswith("//")]


# --------------------------------------------------------------------------- helpers, no kernel
def test_headline_table_pivots_metric_config_keys_and_falls_back_to_the_first_numbers():
    metrics = {"ECE_D.ce": 0.1098, "ECE_D.jml": 0.08, "ablation.mIoU_D.x": 0.3, "mIoU_D.ce": 0.54310,
               "mIoU_D.jml": 0.4419, "n_runs": 13}
    assert headline_table(metrics) == (["mIoU_D", "ECE_D"], [("ce", ["54.3 %", "11.0 %"]),
                                                            ("jml", ["44.2 %", "8.0 %"])], 0)
    many = {f"mIoU_D.c{i}": i / 10 for i in range(9)}
    header, rows, left = headline_table(many, rows=6)
    assert header == ["mIoU_D"] and [r[0] for r in rows] == [f"c{i}" for i in range(6)] and left == 3
    plain = {"race_steps": 400, "slider_wall_s": 0.1, "flag": True, "name": "x", "violations": 441, "d": 2.8e-5}
    assert headline_table(plain) == (["value"], [("race_steps", ["400"]), ("violations", ["441"]),
                                                 ("d", ["2.8e-05"])], 0)
    rates = {"ECE_D": 0.004, "acc": 1.0, "conf_minus_acc": -0.035, "IoU_digit": 0.5, "ECE_hist": 3.0}
    assert headline_table(rates)[1] == [("ECE_D", ["0.4 %"]), ("acc", ["100.0 %"]), ("conf_minus_acc", ["-0.035"]),
                                        ("IoU_digit", ["50.0 %"]), ("ECE_hist", ["3"])]  # % as the notebooks print
    assert headline_table({}) == (["value"], [], 0)


def test_index_thumbnails_follow_the_order_the_notebook_drew_them(tmp_path):
    run = tmp_path / "batch" / "02_story"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Story\n\nQ?")])
    run.mkdir(parents=True)
    nbformat.write(nb, run / "02_story.ipynb")
    (run / "run.json").write_text(json.dumps({"status": "ok", "executed_notebook": "02_story.ipynb"}))
    from PIL import Image

    for i, name in enumerate(["zeta_first", "alpha_second", "figures/mid_third"]):
        path = run / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (8, 8)).save(path)
        os.utime(path, ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
    assert main_report([str(tmp_path / "batch"), "--quiet"]) == 0
    thumbs = [ref for tag, ref in links(tmp_path / "batch" / "report" / INDEX_FILE).refs if tag == "img"]
    assert thumbs == ["thumbs/02_story/zeta_first.png", "thumbs/02_story/alpha_second.png",
                      "thumbs/02_story/figures__mid_third.png"]


def test_formatting_of_numbers_and_durations():
    assert [format_number(v) for v in (0.123456, 12345, float("nan"), None, True, "x")] == [
        "0.1235", "12,345", "–", "–", "yes", "x"]
    assert [format_duration(s) for s in (0.04, 59.94, 60, 3599, 3600, None, float("inf"))] == [
        "0.0 s", "59.9 s", "1 min 00 s", "59 min 59 s", "1 h 00 min", "–", "–"]


def test_notebook_intro_finds_the_first_heading_and_paragraph():
    cell = nbformat.v4.new_markdown_cell
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# not a heading"), cell("# 5. Soft labels"),
                                         cell("## The data\n\nA voxel is a cubic millimetre.\n\nMore."),
                                         cell("# Later heading\n\nLater paragraph.")])
    assert notebook_intro(nb) == ("5. Soft labels", "A voxel is a cubic millimetre.")
    assert notebook_intro(nbformat.v4.new_notebook(cells=[cell("Just text.")])) == (None, "Just text.")
    papermill = cell("An Exception was encountered", metadata={"tags": ["papermill-error-cell-tag"]})
    nb.cells.insert(0, papermill)
    assert notebook_intro(nb) == ("5. Soft labels", "A voxel is a cubic millimetre.")
    assert notebook_intro(nbformat.v4.new_notebook(cells=[cell("# Only a title")])) == ("Only a title", None)


def test_page_is_static_and_links_back_to_the_index(tmp_path):
    widget = nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "text/plain": "IntSlider(value=3)"})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T\n\nThe math $x^2$ and `$HOME`."),
                                         nbformat.v4.new_code_cell("slider", outputs=[widget], execution_count=1)])
    entry = ReportEntry(name="01_t", run_dir=tmp_path, status="interrupted", duration_s=3.0, finished=None,
                        error=None, parameters={}, title="T", question_html="", metrics={})
    page = render_page(nb, entry, index_href="index.html")
    assert "IntSlider(value=3)" in page and "widget-view+json" not in page  # the text fallback, no dead widget
    assert "<script src=" not in page and "mathjax" not in page.lower()  # no script, MathJax's neither
    assert '<a href="index.html">' in page and "status <strong>interrupted</strong>" in page
    assert "no error recorded" in page and "$x^2$" not in page and "<code>$HOME</code>" in page
    assert re.search(r"<math[^>]*><mrow><msup><mi>x</mi><mn>2</mn></msup></mrow></math>", page)  # drawn by the browser
    assert nb.cells[1].outputs[0].data.keys() >= {"application/vnd.jupyter.widget-view+json"}  # input untouched


def test_bad_runs_dir_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "empty" / "not_a_run").mkdir(parents=True)
    cases = {tmp_path / "missing": "does not exist", tmp_path / "a_file": "is a file",
             tmp_path / "empty": "has no <run>/run.json"}
    for path, reason in cases.items():
        with pytest.raises(ValueError, match=f"Expected `runs_dir` to be a batch folder .*{reason}"):
            find_runs(path)
        with pytest.raises(SystemExit) as exc:
            main(["report", str(path)])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("python -m jmlkit report: error: Expected `runs_dir`") and reason in err[-1]
    with pytest.raises(TypeError, match=r"Expected `runs_dir` to be a path .* got 3 \(int\)"):
        write_report(3)
    assert not (tmp_path / "missing").exists()  # nothing created for a bad batch


def test_report_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "python -m jmlkit report runs/quick" in out and "RUNS_DIR" in out and "--out HTML_DIR" in out


# --------------------------------------------------------------------------- the smoke batch
@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    batch = smoke_batch(tmp_path_factory)
    out = tmp_path_factory.mktemp("report") / "html"
    code = main_report([str(batch), "--out", str(out)])
    return {"batch": batch, "out": out, "code": code}


@pytest.mark.slow
@pytest.mark.xdist_group("smoke_batch")
def test_smoke_report_has_a_page_per_notebook_and_no_broken_link(smoke_report):
    batch, out = smoke_report["batch"], smoke_report["out"]
    assert smoke_report["code"] == 0
    runs = find_runs(batch)
    assert [r.name for r in runs] == [p.stem for p in NOTEBOOKS]
    pages = sorted(p.name for p in out.glob("*.html") if p.name != INDEX_FILE)
    assert pages == [f"{p.stem}.html" for p in NOTEBOOKS]
    index = out / INDEX_FILE
    assert check_links(index) == []
    assert remote(index) == []  # the index loads nothing from the network
    refs = [ref for _, ref in links(index).refs]
    for page in pages:
        assert page in refs
    for page in out.glob("*.html"):
        assert check_links(page) == [], page.name
        text = page.read_text(encoding="utf-8")
        assert not [r for r in remote(page) if "<script" in r or r.endswith((".js", ".css"))], page.name
        assert re.findall(r'<(?:script|link)[^>]*(?:src|href)="(?:https?:)?//', text) == [], page.name
        assert "require.js" not in text and "unpkg.com" not in text and "mermaid.esm" not in text
        assert "mathjax" not in text.lower(), page.name  # formulas are MathML, drawn by the browser


@pytest.mark.slow
@pytest.mark.xdist_group("smoke_batch")
def test_smoke_report_index_shows_titles_status_numbers_and_thumbnails(smoke_report):
    batch, out = smoke_report["batch"], smoke_report["out"]
    index = (out / INDEX_FILE).read_text(encoding="utf-8")
    refs = [ref for tag, ref in links(out / INDEX_FILE).refs if tag == "img"]
    for nb_path in NOTEBOOKS:
        run_dir = batch / nb_path.stem
        record = json.loads((run_dir / "run.json").read_text())
        title, question = notebook_intro(nbformat.read(nb_path, as_version=4))
        question_html = sanitize_html(render_markdown_with_mathml(question, markdown2html_mistune).strip())
        assert title.split()[-1] in index and question_html in index  # formulas as MathML
        assert f'status-{record["status"]}">{record["status"]}<' in index
        assert format_duration(record["duration_s"]) in index
        metrics = json.loads((run_dir / "metrics.json").read_text())
        _, rows, _ = headline_table(metrics)
        assert rows and all(f'<td class="num">{cell}</td>' in index for _, cells in rows for cell in cells)
        stems = {p.relative_to(run_dir).with_suffix("") for p in run_dir.rglob("*") if p.suffix in (".png", ".svg")}
        thumbs = [r for r in refs if r.startswith(f"thumbs/{nb_path.stem}/")]
        assert len(thumbs) == len(stems) > 0, nb_path.stem
        if record["status"] == "ok":
            assert "Traceback" not in (out / f"{nb_path.stem}.html").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.xdist_group("smoke_batch")
def test_smoke_report_default_folder_and_rerun(smoke_report, tmp_path):
    # Default: RUNS_DIR/report, on a copy of two runs (the shared batch stays as it is).
    import shutil

    batch = tmp_path / "batch"
    for name in ("01_jaccard_losses", "04_semi_supervised"):
        shutil.copytree(smoke_report["batch"] / name, batch / name)
    assert main_report([str(batch), "--quiet"]) == 0
    assert main_report([str(batch), "--quiet"]) == 0  # a second report replaces the first
    report = batch / "report"
    assert sorted(p.name for p in report.glob("*.html")) == ["01_jaccard_losses.html", "04_semi_supervised.html",
                                                              INDEX_FILE]
    assert check_links(report / INDEX_FILE) == []
    assert not list(report.rglob(".*.tmp"))  # atomic writes leave no temporary file behind
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as exc:
        main_report([str(batch), "--out", str(tmp_path / "file")])
    assert exc.value.code == 2


# --------------------------------------------------------------------------- failures
OK_SOURCE = """\
import json, os
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([0, 1], [0, 1])
fig.savefig(os.path.join(output_dir, "line.png"))
with open(os.path.join(output_dir, "metrics.json"), "w") as fh:
    json.dump({"mIoU_D.ce": 0.25, "ECE_D.ce": 0.125}, fh)
"""


def _notebook(path: Path, title: str, body: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(f"# {title}\n\n**The question.** Does {title} work?"),
        nbformat.v4.new_code_cell('profile = "quick"\nseed = 0\noutput_dir = "."', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.mark.slow
def test_failed_runs_are_listed_with_their_error_and_keep_their_page(tmp_path):
    nbdir, batch = tmp_path / "nbs", tmp_path / "batch"
    _notebook(nbdir / "01_fine.ipynb", "Fine", OK_SOURCE)
    _notebook(nbdir / "02_broken.ipynb", "Broken", 'raise ValueError("boom from the notebook")')
    proc = run_batch(batch, "--notebooks-dir", str(nbdir))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # A run that failed before papermill wrote its notebook, and one whose notebook is unreadable.
    early = batch / "03_early__seed=1,tag=a+b"  # a sweep's run name: links must be quoted
    early.mkdir()
    (early / "run.json").write_text(json.dumps(
        {"run": early.name, "status": "failed", "error": "NoSuchKernel: python9", "duration_s": 0.5,
         "executed_notebook": "03_early.ipynb"}))
    (early / "sub").mkdir()
    (early / "sub" / "partial.png").write_bytes((batch / "01_fine" / "line.png").read_bytes())
    (batch / "04_garbled").mkdir()
    (batch / "04_garbled" / "run.json").write_text(json.dumps(
        {"run": "04_garbled", "status": "ok", "duration_s": 1.0, "executed_notebook": "04_garbled.ipynb"}))
    (batch / "04_garbled" / "04_garbled.ipynb").write_text("{not json")

    code = main_report([str(batch)])
    out = batch / "report"
    assert code == 1  # the garbled notebook could not be rendered
    assert sorted(p.name for p in out.glob("*.html")) == ["01_fine.html", "02_broken.html", INDEX_FILE]
    index = (out / INDEX_FILE).read_text(encoding="utf-8")
    assert check_links(out / INDEX_FILE) == []
    assert "ValueError: boom from the notebook" in index and "NoSuchKernel: python9" in index
    assert "The page could not be rendered" in index and "No executed notebook" in index
    assert index.count("status-failed") >= 2 and "Does Broken work?" in index
    assert '<td class="num">25.0 %</td>' in index and "thumbs/01_fine/line.png" in index  # rates in %
    assert "thumbs/03_early__seed%3D1%2Ctag%3Da%2Bb/sub__partial.png" in index  # a failed run's partial figure
    broken = (out / "02_broken.html").read_text(encoding="utf-8")
    assert "Traceback" in broken  # the error output of the failed cell
    assert 'class="jmlkit-error"' in broken and "ValueError: boom from the notebook" in broken
    assert "Traceback" not in (out / "01_fine.html").read_text(encoding="utf-8")
    assert check_links(out / "02_broken.html") == []


# --------------------------------------------------------------------------- hostile content
PAYLOADS = {
    "script": "<script>alert(1)</script>",
    "onerror": "<img src=x onerror=alert(1)>",
    "attribute break-out": '"><svg onload=alert(1)>',
    "markdown javascript link": "[click](javascript:alert(1))",
    "html javascript link": '<a href=" jav&#x09;ascript:alert(1)">click</a>',
    "data link": '<a href="data:text/html,<script>alert(1)</script>">click</a>',
    "inside a formula": r"$x</mi></math><script>alert(1)</script>\text{<img src=x onerror=alert(1)>}$",
    "MathML link": '<math href="javascript:alert(1)"><mi xlink:href="javascript:alert(1)">x</mi></math>',
}


class _Active(html.parser.HTMLParser):
    """What in a page could run: script elements, ``on*`` attributes, script or data URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed", "base"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            url = re.sub(r"[\t\n\r]", "", value or "").strip("".join(map(chr, range(33)))).lower()  # as browsers do
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            elif name in ("href", "src", "action", "formaction", "xlink:href") and (
                    url.startswith(("javascript:", "vbscript:"))
                    or (url.startswith("data:") and not (tag == "img" and url.startswith("data:image/")))):
                self.found.append(f"<{tag} {name}={value!r}>")


def active_content(page: Path) -> list[str]:
    parser = _Active()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.found


def _hostile_batch(batch: Path, payload: str) -> Path:
    """A batch folder (no kernel) whose one run carries ``payload`` everywhere a notebook or a run can put text."""
    run = batch / "01_hostile"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(f"# Title *kept* {payload}\n\nThe question, "
                                      f"[a safe link](https://example.org), {payload}.\n\nMore text."),
        nbformat.v4.new_code_cell('profile = "quick"\nseed = 0\noutput_dir = "."', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("show()", execution_count=1, outputs=[
            nbformat.v4.new_output("display_data", data={"text/html": f"<b>html</b> {payload}",
                                                         "text/plain": "html"}),
            nbformat.v4.new_output("display_data", data={"text/markdown": f"**md** {payload}", "text/plain": "md"}),
            nbformat.v4.new_output("display_data", data={"application/javascript": "alert(1)",
                                                         "text/plain": "js"})])])
    run.mkdir(parents=True)
    nbformat.write(nb, run / "01_hostile.ipynb")
    (run / "run.json").write_text(json.dumps({
        "run": run.name, "status": "failed", "error": f"ValueError: {payload}", "duration_s": 1.0,
        "executed_notebook": "01_hostile.ipynb", "parameters": {"profile": "quick", payload: payload}}))
    (run / "metrics.json").write_text(json.dumps({payload: payload, f"mIoU_D.{payload}": 0.5, "n": 3}))
    return batch


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_report_of_a_hostile_notebook_runs_nothing(payload, tmp_path):
    """Title, question, parameters, metrics, errors and outputs carrying a script: the report shows text, runs none."""
    batch = _hostile_batch(tmp_path / "batch", payload)
    assert main_report([str(batch), "--quiet"]) == 0
    index, page = batch / "report" / INDEX_FILE, batch / "report" / "01_hostile.html"
    assert active_content(index) == [] and active_content(page) == []
    text = index.read_text(encoding="utf-8")
    assert "Title <em>kept</em>" in text and '<a href="https://example.org" rel="noopener noreferrer">' in text
    assert html.escape(payload) in text  # parameters, metrics and the error: shown as text
    assert "<b>html</b>" in page.read_text(encoding="utf-8")  # sanitised outputs keep their safe markup


def test_notebooks_link_nothing_outside_their_folder():
    """A relative link out of notebooks/ (``](../docs/...)``) breaks in the report and in the student copies; the
    notebooks name such files as text (`docs/paper.md`), and the student kit copies what they name."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                assert not re.search(r"\]\(\.\./", cell.source), (path.name, cell.source[:80])
