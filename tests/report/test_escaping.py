"""User-given names (cohorts, runs, studies) stay text in report.html and report.md."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cape.report.build import build_document, make_context
from cape.report.collect import RunData
from cape.report.document import (
    BulletList,
    CodeBlock,
    Document,
    Paragraph,
    Section,
    TableBlock,
)
from cape.report.figures import save
from cape.report.html import render_html
from cape.report.markdown import render_markdown

from .htmlcheck import inspect, problems

SCRIPT = "<script>alert(1)</script>"
PIPE = "a|b"
NASTY = [SCRIPT, PIPE, "x$y", "line\n# heading", "[link](javascript:alert(1))", "_u_ *e* `c`"]


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def _outside_code(text: str) -> str:
    """The Markdown without its fenced code blocks (their content is literal by definition)."""
    return re.sub(r"^(`{3,})\n.*?^\1$", "", text, flags=re.MULTILINE | re.DOTALL)


def _check_markdown(text: str) -> None:
    prose = _outside_code(text)
    assert not re.search(r"(?<!\\)<", prose)  # every < escaped: no tag can open
    assert not re.search(r"(?<!\\)\]\(javascript", prose)  # the link stays text
    assert not re.search(r"^# heading", text, flags=re.MULTILINE)
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("|---"):  # a table's rule: every row has as many cells as its header
            width = _unescaped_pipes(lines[k - 1])
            for row in lines[k + 1 :]:
                if not row.startswith("|"):
                    break
                assert _unescaped_pipes(row) == width, row


def _check_html(html: str) -> None:
    assert problems(html) == []  # no <script>, no external reference
    assert "<script" not in html and SCRIPT.replace("<", "&lt;").replace(">", "&gt;") in html
    assert set(inspect(html).tags) <= {
        "html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "p", "nav", "ol",
        "li", "a", "section", "ul", "div", "table", "caption", "thead", "tbody", "tr", "th",
        "td", "figure", "img", "figcaption", "pre", "strong",
    }  # fmt: skip


def test_every_block_escapes_user_strings(tmp_path: Path) -> None:
    """Bug caught: a cohort named a|b splitting a Markdown table row, or <script> kept as HTML."""
    figure = Figure(figsize=(2, 1.5))
    figure.subplots().plot([0, 1], [1, 0])
    table = pd.DataFrame(
        {SCRIPT: NASTY, PIPE: ["1"] * len(NASTY)}, index=pd.Index(NASTY, name=PIPE)
    )
    section = Section(f"Cohort {SCRIPT}", "first")
    section.add(Paragraph(" ".join(NASTY)))
    section.note(" ".join(NASTY))
    section.add(BulletList(NASTY, ["agrees"] * len(NASTY)))
    section.add(TableBlock(table, f"caption {SCRIPT} {PIPE}"))
    section.add(CodeBlock("name: ```x```\n" + SCRIPT, f"config {SCRIPT}"))
    document = Document(f"Study {SCRIPT}", f"run {PIPE}", [section])
    markdown = render_markdown(document, tmp_path)
    _check_markdown(markdown)
    assert "````\nname: ```x```" in markdown  # the fence outgrows the backticks inside
    _check_html(render_html(document))
    assert save(figure, tmp_path, "f").is_file()


def test_a_report_of_cohorts_with_hostile_names(tmp_path: Path) -> None:
    """Bugs caught: a cohort name with $ failing the age figure (mathtext), a study name
    injecting HTML into the title, a | in a cohort name breaking Table 1."""
    rng = np.random.default_rng(0)
    cohorts = [SCRIPT, PIPE, "x$y"]
    manifest = pd.DataFrame(
        {
            "record_id": [f"r{k}" for k in range(60)],
            "patient_id": [f"p{k // 2}" for k in range(60)],
            "cohort": np.repeat(cohorts, 20),
            "age": rng.uniform(20, 80, 60),
            "sex": np.tile(["M", "F"], 30),
            "ethnicity": np.tile([SCRIPT, "b"], 30),
        }
    )
    study = {"name": "<img src=x onerror=alert(1)>", "report": {"min_cell_n": 5}}
    data = RunData(run_dir=tmp_path / "run", study=study, manifest=manifest)
    out = tmp_path / "report"
    context = make_context(data, out, tsne_per_cohort=10)
    assert context.settings.min_cell_n == 5  # read from the study's report: section
    document = build_document(context)
    markdown, html = render_markdown(document, out), render_html(document)
    _check_markdown(markdown)
    _check_html(html)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert (out / "figures" / "age_distribution.png").is_file()
    header = next(line for line in markdown.splitlines() if line.startswith("| characteristic"))
    assert _unescaped_pipes(header) == len(cohorts) + 2


@pytest.mark.parametrize("name", ["$", "a$b$c", "$\\frac$"])
def test_figure_labels_take_dollars_literally(name: str, tmp_path: Path) -> None:
    """Bug caught: matplotlib parsing a cohort name as mathtext and failing the whole report."""
    from cape.report.figures import age_distribution, cohort_colours

    manifest = pd.DataFrame({"cohort": [name] * 5 + ["b"] * 5, "age": np.arange(10.0) * 7})
    figure = age_distribution(manifest, cohort_colours([name, "b"]))
    assert figure is not None
    assert save(figure, tmp_path, "ages").is_file()  # drawing it raised before


def test_cli_report_settings(
    partial_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Bug caught: --min-cell-n accepted at 0 (every cell shown) or not reaching the report."""
    from cape.cli import main

    assert (
        main(["report", str(partial_run), "--out", str(tmp_path / "r"), "--min-cell-n", "0"]) == 1
    )
    assert "report.min_cell_n must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # checked before anything is written
    assert main(["report", str(partial_run), "--signal-share", "2", "--out", str(tmp_path)]) == 1
    assert "report.signal_share" in capsys.readouterr().err
