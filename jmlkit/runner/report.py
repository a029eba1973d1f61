"""A batch run as HTML to read without running anything: ``python -m jmlkit report RUNS_DIR [--out HTML_DIR]``.

``RUNS_DIR`` is a folder written by ``jmlkit run`` (one subfolder per run with ``run.json``, the
executed notebook, ``metrics.json`` and figures). The report (default ``RUNS_DIR/report/``) holds:

* ``<run>.html``: the executed notebook rendered by nbconvert's ``HTMLExporter`` with the ``lab``
  template and ``embed_images=True``: figures are base64 in the page and the CSS is inlined, so a
  page is one self-contained file. The template is extended (:data:`PAGE_TEMPLATE`) to drop what
  the ``lab`` template loads from a CDN and a static report does not need: require.js, the
  Jupyter-widgets embedder, Mermaid and MathJax: the formulas of markdown cells and outputs are
  converted to MathML beforehand (:mod:`jmlkit.runner.mathml`), which browsers draw themselves, so a
  page loads nothing from the network. Live widgets need a kernel, so a widget
  output shows its text fallback. Each page starts with a bar linking back to the index, the run's
  status and duration, and, for a run that did not finish ok, its error. A run without an
  executed notebook (it failed before papermill wrote one) gets no page. Markdown cells, HTML and
  markdown outputs are sanitised (:func:`sanitize_html`); JavaScript outputs are left out.
* ``index.html``: for each run its title and question (the notebook's first markdown heading and
  the first paragraph after it), status and duration (``run.json``), headline numbers from
  ``metrics.json`` (:func:`headline_table`; every number in a fold-out table), thumbnails of its
  figures linking to the full-size copies, and a link to its page. Failed runs show their error.
  Title and question are sanitised HTML (:func:`sanitize_html`), all else (parameters, metrics) escaped text.
* ``figures/<run>/`` and ``thumbs/<run>/``: the run's ``*.png`` (``*.svg`` when a figure has no
  PNG) and their thumbnails, named as in ``jmlkit run --figures`` (``/`` becomes ``__``).

Every link is relative, so the folder can be moved, zipped or opened from the file system. Every
file is written atomically (:func:`jmlkit.io.atomic_write`) and the index last, so the index never
points at a file that is not there yet.

Example (the formatting helpers; :func:`write_report` needs a batch folder):

>>> format_number(0.543102), format_number(10000), format_number(None), format_number(2.8e-05)
('0.5431', '10,000', '–', '2.8e-05')
>>> format_duration(45.51), format_duration(185), format_duration(7380)
('45.5 s', '3 min 05 s', '2 h 03 min')
>>> format_metric("mIoU_D.ce", 0.543102), format_metric("ECE_D", 0.0041), format_metric("n_runs", 13)
('54.3 %', '0.4 %', '13')
>>> headline_table({"ECE_D.ce": 0.11, "mIoU_D.ce": 0.54, "mIoU_D.jml": 0.6, "n_runs": 13})
(['mIoU_D', 'ECE_D'], [('ce', ['54.0 %', '11.0 %']), ('jml', ['60.0 %', '–'])], 0)
>>> headline_table({"triangle_violations_dml": 441, "slider_wall_s": 0.1})
(['value'], [('triangle_violations_dml', ['441'])], 0)
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import html
import io
import json
import math
import os
import re
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jmlkit._checks import OneLineParser
from jmlkit.io import atomic_write, atomic_write_text, visible_folders
from jmlkit.layout import METRICS_FILE, RUN_RECORD, read_run_record
from jmlkit.runner.mathml import MATHML_ATTRIBUTES, MATHML_TAGS, render_markdown_with_mathml
from jmlkit.runner.params import read_notebook
from jmlkit.runner.summary import FIGURE_SUFFIXES

__all__ = [
    "HEADLINE_COLUMNS",
    "INDEX_FILE",
    "PAGE_TEMPLATE",
    "REPORT_DIR",
    "ReportEntry",
    "build_parser",
    "find_runs",
    "format_duration",
    "format_metric",
    "format_number",
    "headline_table",
    "main_report",
    "notebook_intro",
    "render_page",
    "sanitize_html",
    "write_report",
]

#: Default report folder inside ``RUNS_DIR``.
REPORT_DIR = "report"
INDEX_FILE = "index.html"
#: Metrics shown as columns of the headline table when ``metrics.json`` has ``<metric>.<config>`` keys.
HEADLINE_COLUMNS = ("mIoU_D", "ECE_D")
_HEADLINE_ROWS = 6
_THUMB_SIZE = (360, 270)

#: Jinja template of a page: nbconvert's ``lab`` template without the scripts a static page does not need.
PAGE_TEMPLATE = """\
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block extra_css -%}
<style type="text/css">
.jmlkit-bar { font-family: system-ui, sans-serif; padding: 0.6em 1em; margin: 0 0 1em 0;
  background: #f3f4f6; border-bottom: 1px solid #d1d5db; }
.jmlkit-bar a { font-weight: 600; }
.jmlkit-error { font-family: system-ui, sans-serif; padding: 0.6em 1em; margin: 0 0 1em 0;
  background: #fef2f2; border: 1px solid #fca5a5; color: #7f1d1d; }
</style>
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.jmlkit_banner }}
{%- endblock body_header -%}
"""

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_PAPERMILL_TAG = "papermill-error-cell-tag"
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")


@dataclasses.dataclass
class ReportEntry:
    """One run of the batch as the index shows it; ``page``, ``figures`` and ``thumbs`` are relative to the report."""

    name: str
    run_dir: Path
    status: str
    duration_s: float | None
    finished: str | None
    error: str | None
    parameters: dict[str, Any]
    title: str
    question_html: str
    metrics: dict[str, Any]
    page: str | None = None
    page_error: str | None = None
    figures: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (caption, full, thumb)


# --------------------------------------------------------------------------- arguments
def _check_path(name: str, value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)) or isinstance(value, bytes):
        raise TypeError(f"Expected `{name}` to be a path (str or os.PathLike), but got {value!r} "
                        f"({type(value).__name__}).")
    if str(value) == "":
        raise ValueError(f"Expected `{name}` to be a non-empty path, but got ''.")
    return Path(value)


def find_runs(runs_dir: str | os.PathLike) -> list[Path]:
    """The run folders of a batch folder: its subfolders that hold a ``run.json`` (not hidden ones), sorted by name.

    A :class:`ValueError` names ``runs_dir`` when it does not exist, is a file or has no run folder.
    """
    folder = _check_path("runs_dir", runs_dir)
    expected = f"Expected `runs_dir` to be a batch folder of `jmlkit run` (subfolders with {RUN_RECORD}), but"
    if not folder.exists():
        raise ValueError(f"{expected} {str(folder)!r} does not exist.")
    if not folder.is_dir():
        raise ValueError(f"{expected} {str(folder)!r} is a file.")
    runs = [p for p in visible_folders(folder) if (p / RUN_RECORD).is_file()]
    if not runs:
        raise ValueError(f"{expected} {str(folder)!r} has no <run>/{RUN_RECORD}.")
    return runs


# --------------------------------------------------------------------------- formatting
def format_number(value: Any) -> str:
    """A metric value as the index shows it: 4 significant digits, ints with thousands separators, ``–`` for none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


#: Metrics that are rates in [0, 1] and that the notebooks print in %: IoU and its means, calibration errors,
#: accuracy and confidence (matched on the name before its first ``.`` or ``_``).
_PERCENT_METRICS = re.compile(r"^(m?IoU|ECE|SCE|MCE|ACE|acc|accuracy|conf|confidence|Dice|mDice)([._]|$)")


def format_metric(key: str, value: Any) -> str:
    """A metric as the notebooks show it: a rate (``mIoU_D``, ``ECE_D``, …; see :data:`_PERCENT_METRICS`) in % with
    one decimal, anything else as :func:`format_number`."""
    if (isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0
            and _PERCENT_METRICS.match(str(key))):
        return f"{100 * value:.1f} %"
    return format_number(value)


def format_duration(seconds: float | None) -> str:
    """``45.5 s``, ``3 min 05 s``, ``2 h 03 min``; ``–`` when unknown."""
    if seconds is None or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _is_timing(key: str) -> bool:
    return key.endswith("_s") or key.endswith("_seconds")


def headline_table(metrics: Mapping[str, Any], *, columns: Sequence[str] = HEADLINE_COLUMNS,
                   rows: int = _HEADLINE_ROWS) -> tuple[list[str], list[tuple[str, list[str]]], int]:
    """The few headline numbers of a run: ``(header, [(label, cells)], rows left out)``, formatted.

    When ``metrics`` has keys ``<metric>.<config>`` for a metric of ``columns``, the table has one
    row per config (in key order) and one column per such metric. Otherwise it lists the first
    ``rows`` numeric entries that are not timings (keys ending in ``_s``) under ``value``.
    """
    configs: list[str] = []
    present: list[str] = []
    for col in columns:
        keys = [k for k, v in metrics.items() if k.startswith(col + ".") and isinstance(v, (int, float))]
        present += [col] if keys else []
        configs += [k[len(col) + 1:] for k in keys if k[len(col) + 1:] not in configs]
    if configs:
        table = [(c, [format_metric(col, metrics.get(f"{col}.{c}")) for col in present]) for c in configs[:rows]]
        return present, table, max(0, len(configs) - rows)
    numeric = [k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and not _is_timing(k)]
    return ["value"], [(k, [format_metric(k, metrics[k])]) for k in numeric[:rows]], max(0, len(numeric) - rows)


_URL_SCHEMES = frozenset({"http", "https", "mailto", "data"})  # data: for images only (_keep_attribute)
_INLINE_TAGS = frozenset({"b", "code", "del", "em", "i", "kbd", "mark", "s", "small", "strong", "sub", "sup"})


def _keep_attribute(tag: str, name: str, value: str) -> str | None:
    """nh3's attribute filter: a ``data:`` URL only as the ``src`` of an image that is an image."""
    url = re.sub(r"[\t\n\r]", "", value).strip("".join(map(chr, range(33)))).lower()  # as a browser reads it
    if name in ("href", "src", "cite", "action", "formaction") and url.startswith("data:"):
        return value if tag == "img" and name == "src" and url.startswith("data:image/") else None
    return value


def sanitize_html(fragment: str, *, inline: bool = False, ids: bool = False) -> str:
    """``fragment`` without anything a browser would run (nh3's allow-list): no script, no ``on*=``, no ``javascript:``.

    Links keep ``http(s):``, ``mailto:`` and relative URLs, images also ``data:image/``; MathML (formulas,
    :mod:`jmlkit.runner.mathml`) stays. ``inline``: inline emphasis and formulas only (a title); ``ids``: ``class``
    and ``id`` attributes too (a page's anchors and CSS classes).

    >>> sanitize_html('T "><script>alert(2)</script> <a href="javascript:alert(1)">a</a> <em>b</em>')
    'T "&gt; <a rel="noopener noreferrer">a</a> <em>b</em>'
    >>> sanitize_html('<img src=x onerror=alert(3)> <a href="https://x.org">x</a>', inline=True)
    ' x'
    """
    import nh3

    attributes = {**{k: set(v) for k, v in nh3.ALLOWED_ATTRIBUTES.items()}, **({"*": {"class", "id"}} if ids else {}),
                  **{tag: set(MATHML_ATTRIBUTES) for tag in MATHML_TAGS}}
    tags = set(_INLINE_TAGS if inline else nh3.ALLOWED_TAGS) | MATHML_TAGS - {"annotation"}
    return nh3.clean(str(fragment), tags=tags,
                     clean_content_tags={"script", "style"}, attributes=attributes, url_schemes=set(_URL_SCHEMES),
                     attribute_filter=_keep_attribute)


def _markdown_html(text: str, *, inline: bool = False) -> str:
    """Markdown rendered as nbconvert renders it (``inline``: one paragraph's content), then sanitised."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    rendered = render_markdown_with_mathml(text, markdown2html_mistune).strip()
    rendered = rendered.removeprefix("<p>").removesuffix("</p>") if inline else rendered
    return sanitize_html(rendered, inline=inline).strip()


def _inline_html(text: str) -> str:
    """Markdown of one line as inline HTML: a leading ``5.`` stays a number, not a list.

    >>> _inline_html("5. Soft *labels*")
    '5. Soft <em>labels</em>'
    """
    return _markdown_html(re.sub(r"^(\s*\d+)([.)])", r"\1\\\2", text), inline=True)


def notebook_intro(nb: Any) -> tuple[str | None, str | None]:
    """The notebook's title (its first markdown heading, as markdown) and question (the first paragraph after it).

    Without a heading the question is the first paragraph of any markdown cell; ``None`` when missing. The
    cells papermill adds to a failed notebook are skipped.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
    ...     nbformat.v4.new_markdown_cell("# Label *smoothing*\\n\\n**The question.** Does it help?\\n\\nMore.")])
    >>> notebook_intro(nb)
    ('Label *smoothing*', '**The question.** Does it help?')
    """
    title = None
    for cell in nb.cells:
        if cell.get("cell_type") != "markdown" or _PAPERMILL_TAG in cell.get("metadata", {}).get("tags", []):
            continue  # papermill puts a cell about a failure above the notebook's own first cell
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        for block in re.split(r"\n[ \t]*\n", source.strip()):
            lines = block.strip().splitlines()
            if not lines:
                continue
            match = _HEADING.match(lines[0])
            if match:
                title = match.group(1) if title is None else title
                rest = "\n".join(lines[1:]).strip()
                if rest:
                    return title, rest
                continue
            return title, block.strip()
    return title, None


# --------------------------------------------------------------------------- pages
def _exporter() -> Any:
    from jinja2 import DictLoader, pass_context
    from nbconvert import HTMLExporter

    class _Exporter(HTMLExporter):
        """nbconvert's exporter whose markdown (cells and outputs) has its formulas as MathML: they are converted
        after nbconvert's own sanitiser has read the markdown, and before the page's (which keeps MathML)."""

        @pass_context
        def markdown2html(self, context: Any, source: str) -> str:
            return render_markdown_with_mathml(source, functools.partial(super().markdown2html, context))

    return _Exporter(template_name="lab", template_file="jmlkit_page.html.j2", embed_images=True,
                        extra_loaders=[DictLoader({"jmlkit_page.html.j2": PAGE_TEMPLATE})],
                        sanitize_html=True, filters={"clean_html": functools.partial(sanitize_html, ids=True)})


def _static_outputs(nb: Any) -> Any:
    """A copy of ``nb`` whose widget outputs fall back to their other representations (no kernel, no widget)."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and _WIDGET_VIEW in data and len(data) > 1:
                del data[_WIDGET_VIEW]
    return nb


def _banner(entry: ReportEntry, index_href: str) -> str:
    bits = [f'<a href="{html.escape(index_href)}">&larr; all notebooks</a>', f"<code>{html.escape(entry.name)}</code>",
            f"status <strong>{html.escape(entry.status)}</strong>", html.escape(format_duration(entry.duration_s))]
    out = f'<nav class="jmlkit-bar">{" · ".join(bits)}</nav>'
    if entry.status != "ok":
        error = entry.error or "no error recorded"
        out += (f'<div class="jmlkit-error">This run is <strong>{html.escape(entry.status)}</strong>: '
                f"<code>{html.escape(error)}</code>. The cells below show how far it got.</div>")
    return out


def render_page(nb: Any, entry: ReportEntry, *, exporter: Any = None, index_href: str = INDEX_FILE) -> str:
    """HTML of one executed notebook (see the module docs), with the bar linking back to ``index_href``."""
    exporter = exporter if exporter is not None else _exporter()
    resources = {"metadata": {"name": entry.name}, "jmlkit_banner": _banner(entry, index_href)}
    body, _ = exporter.from_notebook_node(_static_outputs(nb), resources=resources)
    return body


# --------------------------------------------------------------------------- one run
def _read_metrics(run_dir: Path) -> dict[str, Any]:
    """Every entry of the notebook's headline numbers (:data:`~jmlkit.layout.METRICS_FILE`); ``{}`` when they are
    missing or not a JSON object."""
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def _entry(run_dir: Path) -> tuple[ReportEntry, Path | None]:
    record = read_run_record(run_dir) or {}
    metrics = _read_metrics(run_dir)
    executed = run_dir / str(record.get("executed_notebook") or f"{run_dir.name.split('__')[0]}.ipynb")
    status = str(record.get("status") or "unknown")
    error = record.get("error") if record else f"{RUN_RECORD} is not a JSON object"
    source = None
    for candidate in (executed, Path(str(record.get("notebook") or ""))):
        if candidate.suffix == ".ipynb" and candidate.is_file():
            try:
                source = read_notebook(candidate)
                break
            except Exception:  # unreadable: the page reports it
                continue
    title, question = notebook_intro(source) if source is not None else (None, None)
    duration = record.get("duration_s")
    entry = ReportEntry(
        name=run_dir.name, run_dir=run_dir, status=status,
        duration_s=duration if isinstance(duration, (int, float)) else None,
        finished=record.get("finished"), error=None if error is None else str(error),
        parameters=record.get("parameters") if isinstance(record.get("parameters"), dict) else {},
        title=_inline_html(title) if title else html.escape(run_dir.name),
        question_html=_markdown_html(question) if question else "",
        metrics=metrics)
    return entry, executed if executed.is_file() else None


def _run_figures(run_dir: Path, skip: Path) -> list[Path]:
    """The figures of a run, one file per figure (the PNG, else the SVG), in the order the notebook drew them (the
    order their files were written; by path where that ties), so that the thumbnails follow the story."""
    found = sorted(p for p in run_dir.rglob("*") if p.suffix.lower() in FIGURE_SUFFIXES and p.is_file()
                   and skip not in p.resolve().parents)
    by_stem: dict[Path, Path] = {}
    for path in found:
        key = path.with_suffix("")
        if key not in by_stem or path.suffix.lower() == ".png":
            by_stem[key] = path
    return sorted(by_stem.values(), key=lambda p: (p.stat().st_mtime_ns, p.as_posix()))


def _thumbnail(data: bytes) -> bytes | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.thumbnail(_THUMB_SIZE)
            buffer = io.BytesIO()
            img.save(buffer, format="PNG", optimize=True)
    except Exception:  # not an image PIL reads: the index shows the full figure instead
        return None
    return buffer.getvalue()


def _copy_figures(entry: ReportEntry, out: Path) -> None:
    for fig in _run_figures(entry.run_dir, out.resolve()):
        rel = fig.relative_to(entry.run_dir)
        flat = "__".join(rel.parts)
        full = f"figures/{entry.name}/{flat}"
        data = fig.read_bytes()
        atomic_write(out / full, data)
        thumb = full
        if fig.suffix.lower() == ".png":
            small = _thumbnail(data)
            if small is not None:
                thumb = f"thumbs/{entry.name}/{flat}"
                atomic_write(out / thumb, small)
        entry.figures.append((rel.with_suffix("").as_posix(), full, thumb))


# --------------------------------------------------------------------------- the index
_INDEX_CSS = """\
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 72rem;
  padding: 1rem 1.5rem 3rem; color: #1f2937; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { margin: 0 0 0.3rem; }
.summary, .meta { color: #4b5563; }
.toc td, .toc th, table.numbers td, table.numbers th { padding: 0.15rem 0.6rem; text-align: left; }
table.numbers td.num { text-align: right; font-variant-numeric: tabular-nums; }
section.run { border: 1px solid #d1d5db; border-radius: 8px; padding: 1rem 1.2rem; margin: 1.2rem 0; }
.status { font-weight: 700; padding: 0 0.4rem; border-radius: 4px; }
.status-ok { background: #dcfce7; color: #166534; }
.status-failed, .status-interrupted, .status-unknown { background: #fee2e2; color: #991b1b; }
.status-running, .status-pending, .status-skipped { background: #fef9c3; color: #854d0e; }
.error { background: #fef2f2; border: 1px solid #fca5a5; padding: 0.4rem 0.7rem; white-space: pre-wrap;
  overflow-x: auto; }
.thumbs { display: flex; flex-wrap: wrap; gap: 0.8rem; margin-top: 0.6rem; }
.thumbs figure { margin: 0; max-width: 240px; }
.thumbs img { max-width: 240px; max-height: 180px; border: 1px solid #e5e7eb; background: white; }
.thumbs figcaption { font-size: 0.8rem; color: #4b5563; word-break: break-all; }
details { margin-top: 0.5rem; }
"""


def _numbers_table(header: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["", *header])
    body = "".join(
        f"<tr><td>{html.escape(label)}</td>" + "".join(f'<td class="num">{html.escape(c)}</td>' for c in cells)
        + "</tr>" for label, cells in rows)
    return f'<table class="numbers"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _href(rel: str) -> str:
    return html.escape(urllib.parse.quote(rel))


def _section(entry: ReportEntry) -> str:
    page = _href(entry.page) if entry.page else None
    title = f'<a href="{page}">{entry.title}</a>' if page else entry.title
    params = ", ".join(f"{k}={v}" for k, v in entry.parameters.items())
    meta = [f'<span class="status status-{html.escape(entry.status)}">{html.escape(entry.status)}</span>',
            html.escape(format_duration(entry.duration_s)), f"<code>{html.escape(entry.name)}</code>"]
    meta += [html.escape(params)] if params else []
    meta += [f"finished {html.escape(str(entry.finished))}"] if entry.finished else []
    parts = [f'<section class="run" id="{html.escape(entry.name)}">', f"<h2>{title}</h2>",
             f'<p class="meta">{" · ".join(meta)}</p>']
    if entry.question_html:
        parts.append(f'<div class="question">{entry.question_html}</div>')
    if entry.status != "ok":
        parts.append(f'<pre class="error">{html.escape(entry.error or "no error recorded")}</pre>')
    if entry.page_error:
        parts.append(f'<pre class="error">The page could not be rendered: {html.escape(entry.page_error)}</pre>')
    header, rows, left = headline_table(entry.metrics)
    if rows:
        parts.append(_numbers_table(header, rows))
    if entry.metrics:
        more = f" ({left} more rows)" if left else ""
        everything = [(k, [format_metric(k, v) if not isinstance(v, (list, dict)) else json.dumps(v)])
                      for k, v in entry.metrics.items()]
        parts.append(f"<details><summary>all {len(entry.metrics)} numbers of {METRICS_FILE}{more}</summary>"
                     f"{_numbers_table(['value'], everything)}</details>")
    if entry.figures:
        figs = "".join(
            f'<figure><a href="{_href(full)}"><img src="{_href(thumb)}" alt="{html.escape(caption)}" '
            f'loading="lazy"></a><figcaption>{html.escape(caption)}</figcaption></figure>'
            for caption, full, thumb in entry.figures)
        parts.append(f'<div class="thumbs">{figs}</div>')
    if page:
        parts.append(f'<p><a href="{page}">Read the executed notebook &rarr;</a></p>')
    else:
        parts.append('<p class="meta">No executed notebook: this run has no page.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _index_html(entries: Sequence[ReportEntry], runs_dir: Path) -> str:
    from jmlkit.runner.plan import now

    counts: dict[str, int] = {}
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    profiles = sorted({str(e.parameters["profile"]) for e in entries if "profile" in e.parameters})
    total = sum(e.duration_s or 0.0 for e in entries)
    summary = [f"{len(entries)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))]
    summary += [f"profile {', '.join(profiles)}"] if profiles else []
    summary += [f"total {format_duration(total)}", f"generated {now()}"]
    toc_rows = "".join(
        f'<tr><td><a href="#{_href(e.name)}">{html.escape(e.name)}</a></td><td>{e.title}</td>'
        f'<td><span class="status status-{html.escape(e.status)}">{html.escape(e.status)}</span></td>'
        f"<td>{html.escape(format_duration(e.duration_s))}</td></tr>" for e in entries)
    name = html.escape(runs_dir.resolve().name)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>jmlkit report: {name}</title>\n<style>\n{_INDEX_CSS}</style>\n</head>\n<body>\n"
            f"<h1>jmlkit report: <code>{name}</code></h1>\n"
            f'<p class="summary">{html.escape(" · ".join(summary))}</p>\n'
            f'<table class="toc"><thead><tr><th>run</th><th>title</th><th>status</th><th>duration</th></tr></thead>'
            f"<tbody>{toc_rows}</tbody></table>\n"
            + "\n".join(_section(e) for e in entries) + "\n</body>\n</html>\n")


# --------------------------------------------------------------------------- the report
def write_report(runs_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> tuple[
        Path, list[ReportEntry]]:
    """Write the HTML report of a batch folder; returns the index's path and one entry per run.

    ``out_dir`` defaults to ``runs_dir/report``. A page that nbconvert cannot render is reported in
    its entry's ``page_error`` (and in the index) instead of stopping the report.

    >>> write_report("no/such/batch")
    Traceback (most recent call last):
    ...
    ValueError: Expected `runs_dir` to be a batch folder of `jmlkit run` ..., but 'no/such/batch' does not exist.
    """
    runs = find_runs(runs_dir)
    out = _check_path("out_dir", out_dir) if out_dir is not None else Path(runs_dir) / REPORT_DIR
    if out.exists() and not out.is_dir():
        raise ValueError(f"Expected `out_dir` to be a folder (or a path to create), but {str(out)!r} is a file.")
    out.mkdir(parents=True, exist_ok=True)
    exporter = None
    entries = []
    for run_dir in runs:
        if run_dir.resolve() == out.resolve():
            continue
        entry, executed = _entry(run_dir)
        if executed is not None:
            try:
                exporter = exporter if exporter is not None else _exporter()
                page = f"{entry.name}.html"
                atomic_write_text(out / page, render_page(read_notebook(executed), entry, exporter=exporter))
                entry.page = page
            except Exception as err:  # a broken notebook must not cost the other pages
                entry.page_error = f"{type(err).__name__}: {err}"
        _copy_figures(entry, out)
        entries.append(entry)
    index = atomic_write_text(out / INDEX_FILE, _index_html(entries, Path(runs_dir)))
    return index, entries


# --------------------------------------------------------------------------- command line
_DESCRIPTION = """\
Render a batch folder of `jmlkit run` as HTML to read without running anything: one
self-contained page per executed notebook (nbconvert's lab template, figures embedded, formulas
as MathML; nothing loaded from the network) and an index.html with each
notebook's question, status, duration, headline numbers and figure thumbnails. Failed runs are
listed with their error and get a page when an executed notebook exists.
"""

_EPILOG = """\
examples:
  python -m jmlkit report runs/quick                  # writes runs/quick/report/index.html
  python -m jmlkit report runs/full --out site/full   # anywhere else

exit code: 0 written, 1 some page could not be rendered (see the index), 2 usage error.
"""


def build_parser(prog: str = "python -m jmlkit report") -> argparse.ArgumentParser:
    """The ``jmlkit report`` argument parser."""
    parser = OneLineParser(prog=prog, description=_DESCRIPTION, epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs_dir", metavar="RUNS_DIR", help="batch folder written by `jmlkit run --out RUNS_DIR`")
    parser.add_argument("--out", default=None, metavar="HTML_DIR",
                        help=f"report folder (default: RUNS_DIR/{REPORT_DIR})")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def main_report(argv: Sequence[str] | None = None) -> int:
    """Command line entry of ``jmlkit report``; returns the exit code (usage errors exit with 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        argv = argv[1:]
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        index, entries = write_report(args.runs_dir, args.out)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    broken = [e for e in entries if e.page_error]
    if not args.quiet:
        n_pages = sum(e.page is not None for e in entries)
        n_figs = sum(len(e.figures) for e in entries)
        print(f"{len(entries)} run(s), {n_pages} page(s), {n_figs} figure(s): {index}")
    for e in broken:
        print(f"FAILED rendering {e.name}: {e.page_error}", file=sys.stderr)
    return 1 if broken else 0
