"""The report as Markdown (GitHub flavour): pipe tables, figures linked from ``figures/``."""

from __future__ import annotations

import re
from pathlib import Path

from cape.markup import escape
from cape.report.document import (
    Block,
    BulletList,
    CodeBlock,
    Document,
    FigureBlock,
    Paragraph,
    TableBlock,
)


def _cell(value: object) -> str:
    return escape(value)


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def table_markdown(block: TableBlock) -> str:
    """A pipe table of display strings."""
    frame = block.display_frame()
    header = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    caption = f"**{escape(block.caption)}**\n\n" if block.caption else ""
    return caption + "\n".join([header, rule, *rows])


def block_markdown(block: Block, base: Path) -> str:
    """One block as Markdown; figure links are relative to ``base`` (the report folder)."""
    if isinstance(block, Paragraph):
        return f"> **Note:** {escape(block.text)}" if block.note else escape(block.text)
    if isinstance(block, BulletList):
        verdicts = block.verdicts or [""] * len(block.items)
        return "\n".join(
            f"- **{escape(v)}**: {escape(item)}" if v else f"- {escape(item)}"
            for item, v in zip(block.items, verdicts, strict=True)
        )
    if isinstance(block, TableBlock):
        return table_markdown(block)
    if isinstance(block, FigureBlock):
        # File names are made portable by ReportContext.figure: no escaping needed.
        relative = block.path.relative_to(base).as_posix()
        return f"![{escape(block.alt)}]({relative})\n\n*{escape(block.caption)}*"
    if isinstance(block, CodeBlock):
        caption = f"**{escape(block.caption)}**\n\n" if block.caption else ""
        fence = _fence(block.text)
        return f"{caption}{fence}\n{block.text.rstrip()}\n{fence}"
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_markdown(document: Document, base: Path) -> str:
    """The whole document as Markdown."""
    parts = [f"# {escape(document.title)}", escape(document.subtitle)]
    parts += [
        "## Contents",
        "\n".join(f"{k}. {escape(s.title)}" for k, s in enumerate(document.sections, 1)),
    ]
    for section in document.sections:
        parts.append(f"## {escape(section.title)}")
        parts += [block_markdown(b, base) for b in section.blocks]
    return "\n\n".join(parts) + "\n"


def write_markdown(document: Document, path: Path) -> Path:
    """Write :func:`render_markdown` to ``path`` (figure links relative to its folder)."""
    path.write_text(render_markdown(document, path.parent), encoding="utf-8")
    return path
