"""Confidence intervals: paired bootstrap over test samples, and t-intervals over runs.

Bootstrap indices are generated once from a seed and handed to every model
being compared, so all models are scored on the same resamples (a paired
bootstrap, as in Ribeiro et al. 2020). Callers save the indices (or the seed)
next to the results; nothing here touches files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypedDict

import numpy as np
from scipy import stats as scipy_stats

from cape.stats.metrics import UndefinedMetricError

logger = logging.getLogger(__name__)

MetricFn = Callable[[np.ndarray, np.ndarray], float]


class BootstrapCI(TypedDict):
    """What :func:`bootstrap_ci` and :func:`bootstrap_difference_ci` return."""

    estimate: float  # metric on the full sample (or difference a - b)
    low: float
    high: float
    confidence: float
    method: str  # "percentile"
    n_resamples: int  # resamples used
    n_skipped: int  # resamples where the metric was undefined (e.g. one class)


class MeanCI(TypedDict):
    """What :func:`mean_se_ci` returns."""

    mean: float
    se: float  # standard error of the mean, sample std (ddof=1) / sqrt(n)
    low: float
    high: float
    confidence: float
    n: int
    df: int
    note: str


def bootstrap_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """Resample indices for a paired bootstrap, drawn with replacement.

    Args:
        n: number of samples in the test set.
        n_resamples: number of bootstrap resamples.
        seed: seed of the NumPy generator; the same triple gives the same indices.

    Returns:
        ``(n_resamples, n)`` int32 array (int64 if ``n`` needs it) of indices in ``[0, n)``.

    Raises:
        ValueError: if ``n`` or ``n_resamples`` is below 1.
    """
    if n < 1 or n_resamples < 1:
        raise ValueError(f"need n >= 1 and n_resamples >= 1, got n={n}, n_resamples={n_resamples}")
    rng = np.random.default_rng(seed)
    # int32 halves the memory of the default int64 (10k x 1k resamples = 40 MB).
    dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
    return rng.integers(0, n, size=(n_resamples, n), dtype=dtype)


def _check_indices(indices: np.ndarray, n: int) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"indices must be a 2-D integer array, got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"indices out of range for {n} samples (min {idx.min()}, max {idx.max()})")
    return idx


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _resampled_values(
    metric_fn: MetricFn, y_true: np.ndarray, y_preds: list[np.ndarray], indices: np.ndarray
) -> tuple[np.ndarray, int]:
    """Metric of each prediction array on each resample; rows with any undefined value dropped."""
    values = np.full((indices.shape[0], len(y_preds)), np.nan)
    for row, sample in enumerate(indices):
        try:
            values[row] = [metric_fn(y_true[sample], pred[sample]) for pred in y_preds]
        except UndefinedMetricError:
            continue
    kept = ~np.any(np.isnan(values), axis=1)
    return values[kept], int((~kept).sum())


def _percentile_ci(
    estimate: float, values: np.ndarray, confidence: float, n_skipped: int
) -> BootstrapCI:
    if values.size == 0:
        raise UndefinedMetricError(f"the metric was undefined on all {n_skipped} resamples")
    alpha = 1.0 - confidence
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    if n_skipped:
        logger.info("bootstrap: skipped %d resamples where the metric was undefined", n_skipped)
    return {
        "estimate": float(estimate),
        "low": float(low),
        "high": float(high),
        "confidence": confidence,
        "method": "percentile",
        "n_resamples": int(values.size),
        "n_skipped": n_skipped,
    }


def bootstrap_ci(
    metric_fn: MetricFn,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    indices: np.ndarray,
    confidence: float = 0.95,
) -> BootstrapCI:
    """Percentile bootstrap confidence interval of a metric on fixed resamples.

    Resamples on which the metric is undefined (``metric_fn`` raises
    :class:`UndefinedMetricError`, e.g. AUROC with one class) are skipped and
    counted in ``n_skipped``; the interval is then conditional on the metric
    being defined.

    Args:
        metric_fn: ``f(y_true, y_pred) -> float``, e.g. :func:`cape.stats.auroc`.
        y_true: ``(n, ...)`` targets; resampled along axis 0.
        y_pred: ``(n, ...)`` predictions or scores; resampled along axis 0.
        indices: ``(n_resamples, n)`` from :func:`bootstrap_indices`.
        confidence: coverage of the interval, e.g. 0.95.

    Returns:
        :class:`BootstrapCI`; ``estimate`` is the metric on the full sample.

    Raises:
        ValueError: on bad indices, confidence or mismatched lengths.
        UndefinedMetricError: if the metric is undefined on the full sample or on
            every resample.
    """
    _check_confidence(confidence)
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    if true.shape[0] != pred.shape[0]:
        raise ValueError(f"y_true has {true.shape[0]} samples, y_pred {pred.shape[0]}")
    idx = _check_indices(indices, true.shape[0])
    estimate = metric_fn(true, pred)
    values, n_skipped = _resampled_values(metric_fn, true, [pred], idx)
    return _percentile_ci(estimate, values[:, 0], confidence, n_skipped)


def bootstrap_difference_ci(
    metric_fn: MetricFn,
    y_true: np.ndarray,
    y_pred_a: np.ndarray,
    y_pred_b: np.ndarray,
    indices: np.ndarray,
    confidence: float = 0.95,
) -> BootstrapCI:
    """Paired percentile bootstrap interval of ``metric(a) - metric(b)``.

    Both models are scored on the same resample each time, so the interval
    reflects the correlation between them. A resample is skipped if the metric
    is undefined for either model.

    Args:
        metric_fn: ``f(y_true, y_pred) -> float``.
        y_true: ``(n, ...)`` targets.
        y_pred_a: ``(n, ...)`` predictions of model a.
        y_pred_b: ``(n, ...)`` predictions of model b.
        indices: ``(n_resamples, n)`` from :func:`bootstrap_indices`.
        confidence: coverage of the interval.

    Raises:
        ValueError: on bad indices, confidence or mismatched lengths.
        UndefinedMetricError: if the metric is undefined on the full sample or on
            every resample.
    """
    _check_confidence(confidence)
    true = np.asarray(y_true)
    pred_a, pred_b = np.asarray(y_pred_a), np.asarray(y_pred_b)
    if not true.shape[0] == pred_a.shape[0] == pred_b.shape[0]:
        raise ValueError(
            f"sample counts differ: y_true {true.shape[0]}, a {pred_a.shape[0]}, b {pred_b.shape[0]}"
        )
    idx = _check_indices(indices, true.shape[0])
    estimate = metric_fn(true, pred_a) - metric_fn(true, pred_b)
    values, n_skipped = _resampled_values(metric_fn, true, [pred_a, pred_b], idx)
    return _percentile_ci(estimate, values[:, 0] - values[:, 1], confidence, n_skipped)


def mean_se_ci(values: np.ndarray, confidence: float = 0.95) -> MeanCI:
    """Mean, standard error and Student-t interval across independent runs.

    ``mean ± t_{(1+c)/2, n-1} · s / sqrt(n)`` with ``s`` the sample standard
    deviation (ddof=1). With one value the standard error and interval are NaN
    (noted); with all values equal the interval collapses to the mean.

    Args:
        values: ``(n,)`` one metric value per run.
        confidence: coverage of the interval.

    Raises:
        ValueError: if ``values`` is empty, not 1-D or not finite, or bad confidence.
    """
    _check_confidence(confidence)
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("values contain NaN/inf; drop failed runs explicitly before summarising")
    n = int(array.size)
    mean = float(array.mean())
    if n == 1:
        return {
            "mean": mean,
            "se": float("nan"),
            "low": float("nan"),
            "high": float("nan"),
            "confidence": confidence,
            "n": 1,
            "df": 0,
            "note": "one run: no standard error",
        }
    se = float(array.std(ddof=1) / np.sqrt(n))
    half_width = float(scipy_stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * se
    return {
        "mean": mean,
        "se": se,
        "low": mean - half_width,
        "high": mean + half_width,
        "confidence": confidence,
        "n": n,
        "df": n - 1,
        "note": "",
    }
