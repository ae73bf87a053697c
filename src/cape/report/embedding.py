"""t-SNE of the features (Fig. 4): coloured by cohort, by device and by ethnicity.

The only computation the report does itself: a t-SNE is a picture of the
features, not a result. ECGs are subsampled per cohort (at most ``per_cohort``,
seeded), the features standardised, and ``sklearn.manifold.TSNE`` run with a
fixed ``random_state``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cape.report.collect import FeatureDir
from cape.report.figures import label

logger = logging.getLogger(__name__)

DEFAULT_PER_COHORT = 10_000
COLOUR_BY = ("cohort", "device", "ethnicity")
_UNKNOWN = "unknown"


@dataclass
class Embedding:
    """A 2-D t-SNE of one features directory's subsample."""

    feature_dir: FeatureDir
    coordinates: np.ndarray  # (n, 2)
    labels: pd.DataFrame  # n rows: cohort, device, ethnicity (strings, "unknown" if missing)


def subsample(cohorts: np.ndarray, per_cohort: int, seed: int) -> np.ndarray:
    """Sorted row positions: at most ``per_cohort`` rows of each cohort, drawn with ``seed``.

    Raises:
        ValueError: ``per_cohort < 1``.
    """
    if per_cohort < 1:
        raise ValueError(f"per_cohort must be >= 1, got {per_cohort}")
    rng = np.random.default_rng(seed)
    kept = []
    for cohort in sorted(set(cohorts.tolist())):
        rows = np.flatnonzero(cohorts == cohort)
        if rows.size > per_cohort:
            rows = rng.choice(rows, per_cohort, replace=False)
        kept.append(rows)
    return np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.int64)


def embed_tsne(feature_dir: FeatureDir, per_cohort: int, seed: int) -> Embedding:
    """t-SNE of ``feature_dir``'s features, at most ``per_cohort`` ECGs per cohort.

    Raises:
        CapeError: the features directory is unreadable.
        ValueError: fewer than 5 ECGs after subsampling.
    """
    from sklearn.manifold import TSNE

    from cape.embed import load_features

    features, index = load_features(feature_dir.path)
    cohorts = index["cohort"].astype(str).to_numpy()
    rows = subsample(cohorts, per_cohort, seed)
    if rows.size < 5:
        raise ValueError(f"{feature_dir.path}: only {rows.size} ECGs, too few for a t-SNE")
    values = features[rows].astype(np.float64)
    # Standardise so a few large-scale units do not dominate the distances.
    scale = values.std(axis=0)
    values = (values - values.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    perplexity = float(min(30.0, (rows.size - 1) / 3))
    logger.info("t-SNE of %s: %d ECGs, perplexity %.0f", feature_dir.path, rows.size, perplexity)
    coordinates = TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=seed
    ).fit_transform(values)
    labels = pd.DataFrame(index=np.arange(rows.size))
    for column in COLOUR_BY:
        if column in index:
            picked = index[column].iloc[rows].reset_index(drop=True)
            labels[column] = picked.astype(object).where(picked.notna(), _UNKNOWN).astype(str)
        else:
            labels[column] = _UNKNOWN
    return Embedding(feature_dir, coordinates, labels)


# One qualitative palette per panel, none shared with the cohorts' (Okabe-Ito), so that
# "device A" never reads as "cohort A" or "ethnicity A". Set1 without its pale yellow.
PANEL_PALETTES = {
    "device": ("Dark2", 8, "tab20b"),
    "ethnicity": ("Set1", 9, "tab20c"),
}
_SKIP = {"#ffff33"}  # Set1's yellow: invisible on white


def category_colours(
    values: list[str], column: str, fixed: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Colours of one panel's categories (``unknown`` in light grey).

    The cohort panel takes the report's cohort colours (``fixed``); the device
    and ethnicity panels each have their own palette (:data:`PANEL_PALETTES`).
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    if fixed is not None:
        return {v: fixed.get(v, "#8c8c8c") for v in values}
    name, size, extra_name = PANEL_PALETTES.get(column, PANEL_PALETTES["device"])
    known = sorted(v for v in values if v != _UNKNOWN)
    palette = [to_hex(colormaps[name](k)) for k in range(size)]
    palette = [c for c in palette if c not in _SKIP]
    palette += [to_hex(colormaps[extra_name](k % 20)) for k in range(max(0, len(known) - 8))]
    colours = dict(zip(known, palette, strict=False))
    colours[_UNKNOWN] = "#d0d0d0"
    return colours


def marker_size(n_points: int) -> float:
    """Scatter marker area (points²): large enough to tell colours apart, small for many points.

    ~20 for 1,000 points, 4 (the floor) from 5,000 on; 25 at most.
    """
    return float(np.clip(20_000 / max(n_points, 1), 4.0, 25.0))


def tsne_figure(
    embedding: Embedding,
    cohort_colours: Mapping[str, str],
    title: str,
    number_lines: Sequence[str] = (),
    max_legend: int = 12,
) -> Figure:
    """Three panels (cohort, device, ethnicity); panels whose labels are all unknown are left out.

    ``number_lines`` (e.g. the identifiability results) go under the title.
    """
    panels = [c for c in COLOUR_BY if c == "cohort" or (embedding.labels[c] != _UNKNOWN).any()]
    figure = Figure(figsize=(4.3 * len(panels), 4.4), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    x, y = embedding.coordinates[:, 0], embedding.coordinates[:, 1]
    size = marker_size(len(x))
    for ax, column in zip(axes, panels, strict=True):
        values = embedding.labels[column].to_numpy()
        categories = sorted(set(values.tolist()), key=lambda v: (v == _UNKNOWN, v))
        colours = category_colours(
            categories, column, cohort_colours if column == "cohort" else None
        )
        for category in categories:
            mask = values == category
            ax.scatter(
                x[mask],
                y[mask],
                s=size,
                color=colours[category],
                label=label(category) if len(categories) <= max_legend else None,
                alpha=0.75,
                linewidths=0,
                zorder=1 if category == _UNKNOWN else 2,  # unknowns never hide known points
            )
        ax.set_title(f"coloured by {column}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("t-SNE 1 (arbitrary units)")
        ax.set_ylabel("t-SNE 2 (arbitrary units)")
        if len(categories) <= max_legend:
            ax.legend(fontsize=7, markerscale=max(1.0, 36 / size) ** 0.5, loc="best", title=column)
        else:
            ax.text(
                0.01, 0.01, f"{len(categories)} {column} values", transform=ax.transAxes, fontsize=7
            )
    heading = "\n".join([label(title), *(label(line) for line in number_lines)])
    figure.suptitle(heading, fontsize=10)
    return figure
