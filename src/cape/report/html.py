"""A self-contained HTML page: inline CSS, figures as base64 PNG data URIs, no external links.

The page opens from a laptop, an e-mail attachment or an air-gapped
hospital machine alike: nothing is fetched (no fonts, scripts or stylesheets).
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

import pandas as pd

from cape.report.document import (
    Block,
    BulletList,
    CodeBlock,
    Document,
    FigureBlock,
    Paragraph,
    TableBlock,
)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d1d1f; background: #fafafa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: #fff; }
h1 { margin-bottom: 0.2rem; } .subtitle { color: #555; margin-top: 0; }
h2 { border-bottom: 2px solid #e3e3e3; padding-bottom: 0.2rem; margin-top: 2.2rem; }
nav ol { columns: 2; font-size: 0.92rem; }
table { border-collapse: collapse; margin: 0.6rem 0 1.2rem; font-size: 0.86rem; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right;
         vertical-align: top; }
th { background: #f2f4f7; } td.text, th.text { text-align: left; }
td:not(.text) { white-space: nowrap; }
.table-wrap { overflow-x: auto; }
figure { margin: 1rem 0 1.6rem; } figure img { max-width: 100%; height: auto;
         border: 1px solid #eee; }
figcaption { font-size: 0.88rem; color: #444; margin-top: 0.3rem; }
.note { color: #7a5d00; background: #fff8e1; border-left: 4px solid #f0c000;
        padding: 0.4rem 0.7rem; }
pre { background: #f6f8fa; padding: 0.7rem; overflow-x: auto; font-size: 0.8rem; }
li.agrees { border-left: 5px solid #2e7d32; } li.disagrees { border-left: 5px solid #c62828; }
li.inconclusive { border-left: 5px solid #f9a825; } li.no-difference { border-left: 5px solid #1565c0; } li.not-measured { border-left: 5px solid #9e9e9e; }
li.passes, li.yes { border-left: 5px solid #2e7d32; } li.fails, li.no { border-left: 5px solid #c62828; }
li.partly, li.unclear { border-left: 5px solid #f9a825; }
li.flag { border-left: 5px solid #c62828; background: #fdecea; }
li.clear { border-left: 5px solid #2e7d32; }
ul.claims { list-style: none; padding-left: 0; }
ul.claims li { padding: 0.4rem 0.7rem; margin-bottom: 0.5rem; background: #fafafa; }
"""


def data_uri(path: Path) -> str:
    """The PNG (or SVG) file at ``path`` as a ``data:`` URI."""
    mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _is_text(values: pd.Series) -> bool:
    """Left-align columns that hold words rather than numbers."""
    sample = [str(v) for v in values.head(20)]
    numeric = sum(s[:1].isdigit() or s[:1] in "–-<" for s in sample)
    return numeric < len(sample) / 2


def table_html(block: TableBlock) -> str:
    """An HTML table of display strings (every cell escaped)."""
    frame = block.display_frame()
    text_columns = {c for c in frame.columns if _is_text(frame[c])}
    head = "".join(
        f'<th class="{"text" if c in text_columns else ""}">{escape(str(c))}</th>'
        for c in frame.columns
    )
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(
            f'<td class="{"text" if c in text_columns else ""}">{escape(str(v))}</td>'
            for c, v in zip(frame.columns, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    caption = f"<caption>{escape(block.caption)}</caption>" if block.caption else ""
    return (
        f'<div class="table-wrap"><table>{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def block_html(block: Block) -> str:
    """One block as HTML."""
    if isinstance(block, Paragraph):
        return f'<p class="{"note" if block.note else ""}">{escape(block.text)}</p>'
    if isinstance(block, BulletList):
        verdicts = block.verdicts or [""] * len(block.items)
        items = "".join(
            f'<li class="{escape(v.replace(" ", "-"))}">{escape(item)}</li>'
            for item, v in zip(block.items, verdicts, strict=True)
        )
        return f'<ul class="{"claims" if block.verdicts else ""}">{items}</ul>'
    if isinstance(block, TableBlock):
        return table_html(block)
    if isinstance(block, FigureBlock):
        return (
            f'<figure><img src="{data_uri(block.path)}" alt="{escape(block.alt)}">'
            f"<figcaption>{escape(block.caption)}</figcaption></figure>"
        )
    if isinstance(block, CodeBlock):
        caption = f"<p><strong>{escape(block.caption)}</strong></p>" if block.caption else ""
        return f"{caption}<pre>{escape(block.text)}</pre>"
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_html(document: Document) -> str:
    """The whole document as one self-contained HTML page."""
    toc = "".join(
        f'<li><a href="#{escape(s.anchor)}">{escape(s.title)}</a></li>' for s in document.sections
    )
    sections = []
    for section in document.sections:
        body = "\n".join(block_html(b) for b in section.blocks)
        sections.append(
            f'<section id="{escape(section.anchor)}"><h2>{escape(section.title)}</h2>\n{body}'
            "</section>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(document.title)}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{escape(document.title)}</h1>"
        f'<p class="subtitle">{escape(document.subtitle)}</p>'
        f"<nav><ol>{toc}</ol></nav>\n" + "\n".join(sections) + "</main></body></html>\n"
    )


def write_html(document: Document, path: Path) -> Path:
    """Write :func:`render_html` to ``path``."""
    path.write_text(render_html(document), encoding="utf-8")
    return path
