"""The report as Markdown (GitHub flavour): pipe tables, figures linked from ``figures/``."""

from __future__ import annotations

from pathlib import Path

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
    # A pipe inside a cell would end it; newlines would end the row.
    return str(value).replace("|", "\\|").replace("\n", " ")


def table_markdown(block: TableBlock) -> str:
    """A pipe table of display strings."""
    frame = block.display_frame()
    header = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    caption = f"**{block.caption}**\n\n" if block.caption else ""
    return caption + "\n".join([header, rule, *rows])


def block_markdown(block: Block, base: Path) -> str:
    """One block as Markdown; figure links are relative to ``base`` (the report folder)."""
    if isinstance(block, Paragraph):
        return f"> **Note:** {block.text}" if block.note else block.text
    if isinstance(block, BulletList):
        verdicts = block.verdicts or [""] * len(block.items)
        return "\n".join(
            f"- **{v}**: {item}" if v else f"- {item}"
            for item, v in zip(block.items, verdicts, strict=True)
        )
    if isinstance(block, TableBlock):
        return table_markdown(block)
    if isinstance(block, FigureBlock):
        relative = block.path.relative_to(base).as_posix()
        return f"![{block.alt}]({relative})\n\n*{block.caption}*"
    if isinstance(block, CodeBlock):
        caption = f"**{block.caption}**\n\n" if block.caption else ""
        return f"{caption}```\n{block.text.rstrip()}\n```"
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_markdown(document: Document, base: Path) -> str:
    """The whole document as Markdown."""
    parts = [f"# {document.title}", document.subtitle]
    parts += [
        "## Contents",
        "\n".join(f"{k}. {s.title}" for k, s in enumerate(document.sections, 1)),
    ]
    for section in document.sections:
        parts.append(f"## {section.title}")
        parts += [block_markdown(b, base) for b in section.blocks]
    return "\n\n".join(parts) + "\n"


def write_markdown(document: Document, path: Path) -> Path:
    """Write :func:`render_markdown` to ``path`` (figure links relative to its folder)."""
    path.write_text(render_markdown(document, path.parent), encoding="utf-8")
    return path
