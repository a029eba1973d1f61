"""The README's numbers come from the committed result files: each generated block of README.md (the paper's claims,
the result tables; ``python -m jmlkit readme``) equals what the results folder it names gives.

A block whose folder does not exist in this checkout (``results/full`` before the full profile has run) is skipped,
with the reason; a README without the optional results markers skips that block. Prose numbers are not checked
here: the README quotes only the generated blocks.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from jmlkit.runner.readme import BLOCKS, block_content, block_source, build_block, has_block, main_readme

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _source(text: str, block) -> Path:
    """The results folder of ``block`` in the README; skips (or fails, for a required block) when there is none."""
    if not has_block(text, block):
        if block.required:
            pytest.fail(f"README.md has no {block.begin} ... {block.end} block")
        pytest.skip(f"README.md has no {block.begin} ... {block.end} block yet")
    source = block_source(text, block)
    assert source is not None, (f"README.md's {block.name} block was not generated: run `python -m jmlkit readme "
                                f"--results DIR`")
    results = ROOT / source
    if not results.is_dir():
        pytest.skip(f"README.md's {block.name} block comes from {source}/, which does not exist in this checkout yet "
                    f"(`jmlkit run --profile ... --results {source}` writes it)")
    return results


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_readme_block_equals_the_results_it_names(block):
    text = README.read_text(encoding="utf-8")
    results = _source(text, block)
    source = block_source(text, block)
    expected = build_block(block, results, source=source)
    assert block_content(text, block) == expected, (
        f"README.md's {block.name} block is stale: run `python -m jmlkit readme --results {source}`")


def test_readme_check_passes():
    """``python -m jmlkit readme --check`` on the folder that the README's blocks name (one folder for all)."""
    text = README.read_text(encoding="utf-8")
    sources = {block_source(text, b) for b in BLOCKS if has_block(text, b)}
    if len(sources) != 1:
        pytest.skip(f"the README's blocks name different folders ({sorted(map(str, sources))}); each is checked alone")
    results = _source(text, BLOCKS[0])
    assert main_readme(["--check", "--results", str(results), "--readme", str(README)]) == 0


def test_readme_claims_figure_is_committed_beside_the_readme():
    """The claims block links the claims drawn (``python -m jmlkit readme`` writes them); the file is there."""
    import re

    text = README.read_text(encoding="utf-8")
    block = block_content(text, "claims") or ""
    links = re.findall(r"!\[[^\]]*\]\(([^)]+claims\.png)\)", block)
    assert links, "the claims block has no link to its figure: run `python -m jmlkit readme`"
    assert all((ROOT / link).is_file() for link in links), links
