"""TeX formulas of markdown as MathML, so that a report page shows its maths without loading anything.

Browsers draw MathML themselves (Chromium since version 109, Firefox and Safari long before), so a page
whose ``$…$`` and ``$$…$$`` spans are converted here (by the ``latex2mathml`` package) needs neither MathJax nor
a network. Code spans and fenced code blocks are left as they are, as is a ``\\$`` (an escaped dollar). A formula
that ``latex2mathml`` cannot read stays as its TeX source in a ``<code>`` element, so nothing is lost.

Example:
    >>> markdown_with_mathml("the floor $\\\\varepsilon/C$, not `$HOME`")[:60]
    'the floor <math xmlns="http://www.w3.org/1998/Math/MathML" d'
    >>> markdown_with_mathml("costs \\\\$5 and \\\\$6")
    'costs \\\\$5 and \\\\$6'
"""
from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable

__all__ = ["MATHML_TAGS", "MATHML_ATTRIBUTES", "tex_to_mathml", "markdown_with_mathml", "render_markdown_with_mathml"]

#: The MathML elements and attributes ``latex2mathml`` writes: what a sanitiser must let through.
MATHML_TAGS = frozenset({
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup", "msubsup", "mfrac", "msqrt", "mroot",
    "mstyle", "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mpadded", "mphantom", "menclose", "merror",
    "semantics", "annotation"})
MATHML_ATTRIBUTES = frozenset({
    "xmlns", "display", "displaystyle", "scriptlevel", "mathvariant", "stretchy", "fence", "separator", "lspace",
    "rspace", "form", "accent", "accentunder", "movablelimits", "largeop", "symmetric", "width", "height", "depth",
    "linethickness", "columnalign", "columnspacing", "rowspacing", "rowalign", "columnlines", "rowlines", "frame",
    "framespacing", "notation", "minsize", "maxsize", "encoding"})

# Fenced code blocks and code spans (kept verbatim), then display maths, then inline maths. An inline formula
# does not start or end with a space (as in Jupyter), so that "$5 and $6" is not one.
_CODE = re.compile(r"(^[ \t]*(```|~~~).*?^[ \t]*\2[^\n]*$|`+[^`]*?`+)", re.M | re.S)
_MATH = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<![\\$])\$(?![\s$])((?:\\\$|[^$\n])+?)(?<![\s\\])\$(?!\$)", re.S)


def tex_to_mathml(tex: str, *, display: bool = False) -> str:
    """One TeX formula as a ``<math>`` element (``display``: a block); its TeX in ``<code>`` when unreadable.

    >>> tex_to_mathml("x^2")
    '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><msup><mi>x</mi><mn>2</mn></msup></mrow></math>'
    >>> tex_to_mathml("\\\\frac{1}{")
    '<code>$\\\\frac{1}{$</code>'
    """
    from latex2mathml.converter import convert

    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # latex2mathml raises its own errors (and IndexError) on TeX it does not know
        fence = "$$" if display else "$"
        return f"<code>{html.escape(fence + tex + fence)}</code>"


def _replace_math(markdown: str, replace: Callable[[str, bool], str]) -> str:
    """``markdown`` with each formula outside code replaced by ``replace(tex, display)``."""
    if not isinstance(markdown, str):
        raise TypeError(f"Expected `markdown` to be a str, but got {type(markdown).__name__}.")
    if "$" not in markdown:
        return markdown

    def one(match: re.Match[str]) -> str:
        display, inline = match.group(1), match.group(2)
        return replace(display, True) if display is not None else replace(inline, False)

    out, last = [], 0
    for code in _CODE.finditer(markdown):
        out += [_MATH.sub(one, markdown[last:code.start()]), code.group(0)]
        last = code.end()
    out.append(_MATH.sub(one, markdown[last:]))
    return "".join(out)


def markdown_with_mathml(markdown: str) -> str:
    """``markdown`` with every ``$…$`` and ``$$…$$`` outside code replaced by MathML (see the module docs)."""
    return _replace_math(markdown, lambda tex, display: tex_to_mathml(tex, display=display))


def render_markdown_with_mathml(markdown: str, render: Callable[[str], str]) -> str:
    """``render(markdown)`` (a markdown-to-HTML function) with the formulas of ``markdown`` as MathML.

    Each formula is replaced by a placeholder word that markdown leaves alone, and the MathML is put in its place
    after rendering: a markdown renderer that reads inline HTML one tag at a time (nbconvert's, when it embeds
    images) would otherwise break the nested MathML elements apart.

    >>> render_markdown_with_mathml("*a* $x$", lambda md: md.replace("*a*", "<em>a</em>"))[:20]
    '<em>a</em> <math xml'
    """
    formulas: list[str] = []
    token = f"jmlkitformula{uuid.uuid4().hex}n"

    def hold(tex: str, display: bool) -> str:
        formulas.append(tex_to_mathml(tex, display=display))
        return f"{token}{len(formulas) - 1}x"

    rendered = render(_replace_math(markdown, hold))
    return re.sub(re.escape(token) + r"(\d+)x", lambda m: formulas[int(m.group(1))], rendered) if formulas else rendered
