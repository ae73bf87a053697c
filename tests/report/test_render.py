"""HTML and Markdown rendering of a small document."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from cape.report.document import (
    BulletList,
    CodeBlock,
    Document,
    FigureBlock,
    Paragraph,
    Section,
    TableBlock,
)
from cape.report.figures import cohort_colours, model_colours, save
from cape.report.html import render_html
from cape.report.markdown import render_markdown

from .htmlcheck import inspect, problems


@pytest.fixture
def document(tmp_path: Path) -> Document:
    figure = Figure(figsize=(2, 1.5))
    figure.subplots().plot([0, 1], [1, 0])
    path = save(figure, tmp_path / "figures", "line")
    table = pd.DataFrame({"a|b": ["1.0", "<2>"]}, index=pd.Index(["x", "y"], name="row"))
    section = Section("First & <only>", "first")
    section.add(Paragraph("plain <b>text</b>"))
    section.note("something is missing")
    section.add(BulletList(["claim one", "claim two"], ["agrees", "not measured"]))
    section.add(TableBlock(table, "a caption"))
    section.add(FigureBlock(path, "a figure", "alt text"))
    section.add(CodeBlock("key: value", "config"))
    return Document("Title", "Subtitle", [section])


def test_html_is_self_contained_and_escaped(document: Document) -> None:
    html = render_html(document)
    assert problems(html) == []
    page = inspect(html)
    assert len(page.images) == 1
    assert "plain &lt;b&gt;text&lt;/b&gt;" in html
    assert "&lt;2&gt;" in html and "First &amp; &lt;only&gt;" in html
    assert 'class="agrees"' in html and 'class="not-measured"' in html
    assert '<a href="#first">' in html and 'id="first"' in html


def test_checker_catches_external_references() -> None:
    assert problems('<img src="figures/a.png">')
    assert problems('<a href="https://example.org">x</a>')
    assert problems('<link rel="stylesheet" href="style.css">')
    assert problems("<style>body { background: url(a.png); }</style>")
    assert problems('<img src="data:image/png;base64,aGVsbG8=">')  # not a PNG


def test_markdown(document: Document, tmp_path: Path) -> None:
    text = render_markdown(document, tmp_path)
    assert "## First \\& \\<only\\>" in text
    assert "![alt text](figures/line.png)" in text
    assert "| row | a\\|b |" in text
    assert "plain \\<b\\>text\\</b\\>" in text
    assert "> **Note:** something is missing" in text
    assert "- **agrees**: claim one" in text
    assert "```\nkey: value\n```" in text


def test_unnamed_index_gets_an_empty_header() -> None:
    block = TableBlock(pd.DataFrame({"v": ["1"]}, index=["r"]))
    assert list(block.display_frame().columns) == ["", "v"]


def test_colours_are_stable_and_distinct() -> None:
    first = cohort_colours(["b", "a", "c"])
    assert first == cohort_colours(["c", "b", "a", "a"])
    assert len(set(first.values())) == 3
    many = cohort_colours([f"cohort{k}" for k in range(15)])
    assert len(set(many.values())) == 15
    models = model_colours(["random", "idb", "untrained", "mean-predictor"])
    assert len(set(models.values())) == 4
    assert not set(models.values()) & set(first.values())
