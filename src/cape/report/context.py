"""What every section builder shares: the run's data, colours, the compared pair, options."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from cape.report.collect import RunData
from cape.report.document import FigureBlock
from cape.report.figures import save
from cape.report.settings import ReportSettings


@dataclass
class ReportContext:
    """Inputs and options of one report.

    Attributes:
        data: the collected run directory.
        out_dir: the report folder (``report.html``, ``report.md``, ``figures/``).
        cohort_colours: one colour per cohort, used by every figure.
        model_colours: one colour per model.
        pair: ``(random_model, idb_model)`` compared by the claims, or None.
        claims: the output of :func:`cape.report.claims.claims_from_data`.
        tsne_per_cohort: t-SNE subsample cap per cohort.
        seed: seeds the t-SNE subsample and layout.
        svg: also write every figure as SVG.
        progress: show a progress bar over the t-SNE panels.
        settings: small-cell and sanity-check thresholds.
    """

    data: RunData
    out_dir: Path
    cohort_colours: dict[str, str]
    model_colours: dict[str, str]
    pair: tuple[str, str] | None
    claims: list[dict[str, Any]]
    tsne_per_cohort: int
    seed: int = 0
    svg: bool = False
    progress: bool = False
    settings: ReportSettings = field(default_factory=ReportSettings)
    figure_names: list[str] = field(default_factory=list)

    @property
    def figures_dir(self) -> Path:
        return self.out_dir / "figures"

    def figure(self, figure: Figure, name: str, caption: str, alt: str) -> FigureBlock:
        """Save ``figure`` as ``figures/NAME.png`` and return the block that shows it."""
        # Cohort and model names become file names: keep them portable.
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        path = save(figure, self.figures_dir, name, self.svg)
        self.figure_names.append(name)
        return FigureBlock(path=path, caption=caption, alt=alt)
