"""A metric per subgroup (sex, 10-year age bin, ethnicity, device) with counts, as tidy rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from cape.stats import (
    UndefinedMetricError,
)


def age_bins(age: np.ndarray, width: int = 10, top: float | None = None) -> pd.Categorical:
    """Ordered age-bin labels such as ``"40-49"`` (bin ``[40, 50)``), NaN for unknown age.

    Args:
        age: ``(n,)`` ages in years (NaN allowed).
        width: bin width in years.
        top: ages ``>= top`` share one bin labelled ``"{top}+"`` (e.g. 90 for
            top-coded PTB-XL ages); None for no open bin.

    Returns:
        Ordered categorical with every bin between the lowest and highest age,
        including empty ones, so figures show gaps.

    Raises:
        ValueError: if ``width < 1``.
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    values = np.asarray(age, dtype=np.float64)
    known = np.isfinite(values)
    if top is not None:
        known_top = known & (values >= top)
        values = np.where(known_top, np.nan, values)
    lower = np.floor(values / width) * width
    finite_lower = lower[np.isfinite(lower)]
    starts = (
        np.arange(finite_lower.min(), finite_lower.max() + width, width).astype(int)
        if finite_lower.size
        else np.array([], dtype=int)
    )
    categories = [f"{s}-{s + width - 1}" for s in starts]
    labels = np.array(
        [f"{int(v)}-{int(v) + width - 1}" if np.isfinite(v) else None for v in lower], dtype=object
    )
    if top is not None:
        top_label = f"{top:g}+"
        categories.append(top_label)
        labels[known_top] = top_label
    return pd.Categorical(labels, categories=categories, ordered=True)


def subgroup_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    subgroups: pd.DataFrame,
    min_count: int = 1,
) -> pd.DataFrame:
    """A metric overall and within every value of every subgroup column, with counts.

    Args:
        y_true: ``(n, ...)`` targets.
        y_pred: ``(n, ...)`` predictions or scores.
        metric_fn: ``f(y_true, y_pred) -> float``, e.g. :func:`cape.stats.mean_absolute_error`.
        subgroups: ``n`` rows in the order of ``y_true``; one column per grouping
            variable (``sex``, ``age_bin`` from :func:`age_bins`, ``ethnicity``,
            ``device``). Missing values form a group named ``"missing"``.
        min_count: groups smaller than this get NaN (with a note) instead of a metric.

    Returns:
        Tidy DataFrame: ``variable``, ``group``, ``n``, ``value``, ``note``; the
        first row is ``("all", "all")``. Groups follow category order for
        categoricals and sorted order otherwise. A metric undefined in a group
        (e.g. AUROC with one class) is NaN with the reason in ``note``.

    Raises:
        ValueError: if lengths differ.
    """
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    if not true.shape[0] == pred.shape[0] == len(subgroups):
        raise ValueError(
            f"lengths differ: y_true {true.shape[0]}, y_pred {pred.shape[0]}, subgroups {len(subgroups)}"
        )

    def score(mask: np.ndarray) -> tuple[float, str]:
        n = int(mask.sum())
        if n < max(min_count, 1):
            return float("nan"), f"fewer than {max(min_count, 1)} samples"
        try:
            return float(metric_fn(true[mask], pred[mask])), ""
        except UndefinedMetricError as error:
            return float("nan"), str(error)

    rows = []
    value, note = score(np.ones(true.shape[0], dtype=bool))
    rows.append(
        {"variable": "all", "group": "all", "n": true.shape[0], "value": value, "note": note}
    )
    for column in subgroups.columns:
        series = subgroups[column].reset_index(drop=True)
        missing = series.isna().to_numpy()
        if isinstance(series.dtype, pd.CategoricalDtype):
            groups = list(series.cat.categories)
        else:
            groups = sorted(series[~missing].unique().tolist(), key=str)
        for group in groups:
            mask = (series == group).to_numpy() & ~missing
            value, note = score(mask)
            rows.append(
                {
                    "variable": str(column),
                    "group": str(group),
                    "n": int(mask.sum()),
                    "value": value,
                    "note": note,
                }
            )
        if missing.any():
            value, note = score(missing)
            rows.append(
                {
                    "variable": str(column),
                    "group": "missing",
                    "n": int(missing.sum()),
                    "value": value,
                    "note": note,
                }
            )
    return pd.DataFrame(rows, columns=["variable", "group", "n", "value", "note"])
