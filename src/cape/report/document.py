"""The report as data: sections of paragraphs, lists, tables, figures and code.

:mod:`cape.report.build` fills a :class:`Document`; :mod:`cape.report.html`
and :mod:`cape.report.markdown` render the same document, so both files say
the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Paragraph:
    """Plain text (no markup); ``note`` paragraphs say why something is missing."""

    text: str
    note: bool = False


@dataclass
class BulletList:
    """Items of plain text; ``verdicts`` (same length, optional) tag each item for styling."""

    items: list[str]
    verdicts: list[str] | None = None


@dataclass
class TableBlock:
    """A table whose cells are display strings; the index is shown when ``show_index``."""

    frame: pd.DataFrame
    caption: str = ""
    show_index: bool = True

    def display_frame(self) -> pd.DataFrame:
        """The frame with its index (if shown) as leading columns; unnamed levels get ``""``."""
        if not self.show_index:
            return self.frame
        names = [name if name is not None else "" for name in self.frame.index.names]
        frame = self.frame.copy()
        frame.index = frame.index.set_names([f"__level{k}" for k in range(len(names))])
        frame = frame.reset_index()
        return frame.rename(columns={f"__level{k}": n for k, n in enumerate(names)})


@dataclass
class FigureBlock:
    """A PNG written under the report's ``figures/`` folder."""

    path: Path
    caption: str
    alt: str


@dataclass
class CodeBlock:
    """Preformatted text (configuration, provenance)."""

    text: str
    caption: str = ""


Block = Paragraph | BulletList | TableBlock | FigureBlock | CodeBlock


@dataclass
class Section:
    """A titled section; ``anchor`` is its id in the HTML."""

    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, block: Block) -> Section:
        self.blocks.append(block)
        return self

    def note(self, text: str) -> Section:
        return self.add(Paragraph(text, note=True))


@dataclass
class Document:
    """The whole report."""

    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)
