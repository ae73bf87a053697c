"""Assemble the report of a study run and write report.html, report.md and figures/."""

from __future__ import annotations

import logging
from pathlib import Path

from cape.report.claims import claims_from_data, compared_models
from cape.report.collect import RunData, collect
from cape.report.context import ReportContext
from cape.report.document import Document
from cape.report.embedding import DEFAULT_PER_COHORT
from cape.report.figures import cohort_colours, model_colours
from cape.report.finetuning import finetune_section
from cape.report.html import write_html
from cape.report.label_efficiency import label_efficiency_section
from cape.report.markdown import write_markdown
from cape.report.results_sections import (
    composition_section,
    diagnostics_section,
    embeddings_section,
    ood_section,
)
from cape.report.sections import (
    claims_section,
    cohorts_section,
    pretraining_section,
    provenance_section,
)
from cape.report.settings import ReportSettings
from cape.report.simulation import simulation_section

logger = logging.getLogger(__name__)

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"
# Each builder returns a Section, or None when it does not apply to the run (the
# simulation section for real cohorts). New diagnostics add a builder here.
SECTIONS = (
    claims_section,
    simulation_section,
    cohorts_section,
    pretraining_section,
    ood_section,
    composition_section,
    finetune_section,
    label_efficiency_section,
    embeddings_section,
    diagnostics_section,
    provenance_section,
)


def build_document(context: ReportContext) -> Document:
    """Every section, in order, as a :class:`Document` (figures are written on the way)."""
    data = context.data
    name = str(data.study.get("name") or data.run_dir.name)
    version = data.provenance.get("cape_version")
    subtitle = f"Study run {data.run_dir.name}" + (f", CAPE {version}" if version else "")
    document = Document(title=f"CAPE study report: {name}", subtitle=subtitle)
    for make in SECTIONS:
        logger.info("report: %s", make.__name__)
        section = make(context)
        if section is not None:
            document.sections.append(section)
    return document


def make_context(
    data: RunData,
    out_dir: Path,
    tsne_per_cohort: int = DEFAULT_PER_COHORT,
    seed: int = 0,
    svg: bool = False,
    progress: bool = False,
    settings: ReportSettings | None = None,
) -> ReportContext:
    """The shared inputs of the section builders (colours fixed once for the whole report)."""
    models = data.model_order()
    for result in (data.ood, data.composition):
        if result is not None and len(result.summary):
            models += [
                m for m in dict.fromkeys(result.summary["model"].astype(str)) if m not in models
            ]
    models += [f.model for f in data.feature_dirs if f.model not in models]
    return ReportContext(
        data=data,
        out_dir=out_dir,
        cohort_colours=cohort_colours(data.cohorts),
        model_colours=model_colours(models),
        pair=compared_models(data),
        claims=claims_from_data(data),
        tsne_per_cohort=tsne_per_cohort,
        seed=seed,
        svg=svg,
        progress=progress,
        settings=settings or ReportSettings.from_study(data.study),
    )


def write_report(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    tsne_per_cohort: int = DEFAULT_PER_COHORT,
    seed: int = 0,
    svg: bool = False,
    progress: bool = False,
    min_cell_n: int | None = None,
    signal_share: float | None = None,
) -> Path:
    """Write the study report of ``run_dir`` into ``out_dir``.

    Reads only what the run saved (see :mod:`cape.report.collect`); the one
    computation is the t-SNE of each model's first encoder seed. Sections
    whose inputs are missing are replaced by a note.

    Args:
        run_dir: a study run directory.
        out_dir: the report folder (created): ``report.html`` (self-contained),
            ``report.md`` and ``figures/*.png``.
        tsne_per_cohort: at most this many ECGs per cohort in each t-SNE
            (the paper: 10,000).
        seed: seeds the t-SNE subsample and layout.
        svg: also write every figure as SVG.
        progress: progress bar over the t-SNE panels.
        min_cell_n: subgroup rows and age bins with fewer test ECGs per head
            are suppressed (None: the study's ``report.min_cell_n``, else 20).
        signal_share: flag the raw-signal reference when the best encoder keeps
            less than this share of its above-chance cohort identifiability
            (None: the study's ``report.signal_share``, else 0.5).

    Returns:
        The path of ``report.html``.

    Raises:
        CapeError: ``run_dir`` does not exist, or a report setting is out of range.
        ValueError: ``tsne_per_cohort < 1``.
    """
    if tsne_per_cohort < 1:
        raise ValueError(f"tsne_per_cohort must be >= 1, got {tsne_per_cohort}")
    data = collect(run_dir)  # first: a mistyped run directory must not be created below
    settings = ReportSettings.from_study(
        data.study, min_cell_n=min_cell_n, signal_share=signal_share
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    context = make_context(data, out_dir, tsne_per_cohort, seed, svg, progress, settings)
    document = build_document(context)
    write_markdown(document, out_dir / MARKDOWN_FILE)
    path = write_html(document, out_dir / HTML_FILE)
    logger.info("report written to %s (%d figures)", path, len(context.figure_names))
    return path
