"""Task metrics: MAE, R², AUROC, macro AUROC and accuracy.

Every metric takes ``(y_true, y_pred)`` and returns a float, so any of them can
be handed to :func:`cape.stats.bootstrap_ci`. A metric that is not defined for
its input (AUROC with one class present) raises :class:`UndefinedMetricError`,
which the bootstrap catches and counts instead of crashing.

Inputs must be finite: callers exclude samples with missing labels (and count
them) before computing a metric, so a NaN here is a programming error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy as np

from cape.stats.ranks import midrank


class UndefinedMetricError(ValueError):
    """The metric has no value for this input (e.g. AUROC with a single class)."""


def _as_finite_1d(name: str, values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        n_bad = int(np.sum(~np.isfinite(array)))
        raise ValueError(f"{name} contains {n_bad} NaN/inf values; exclude them before scoring")
    return array


def _check_pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true = _as_finite_1d("y_true", y_true)
    pred = _as_finite_1d("y_pred", y_pred)
    if true.shape != pred.shape:
        raise ValueError(f"y_true {true.shape} and y_pred {pred.shape} differ in shape")
    if true.size == 0:
        raise ValueError("cannot score an empty set of samples")
    return true, pred


def as_binary_labels(y_true: np.ndarray) -> np.ndarray:
    """Binary labels (0/1 or bool) as a bool array.

    Raises:
        ValueError: if any label is not 0, 1, True or False.
    """
    labels = np.asarray(y_true)
    if labels.dtype == bool:
        return labels
    unknown = np.setdiff1d(np.unique(labels), [0, 1])
    if unknown.size:
        raise ValueError(f"binary labels must be 0/1 or bool, found {unknown[:5].tolist()}")
    return labels.astype(bool)


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error, in the unit of the target (years for age).

    Args:
        y_true: ``(n,)`` targets.
        y_pred: ``(n,)`` predictions.

    Raises:
        ValueError: on shape mismatch, empty or non-finite input.
    """
    true, pred = _check_pair(y_true, y_pred)
    return float(np.mean(np.abs(true - pred)))


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (can be negative).

    Raises:
        ValueError: on shape mismatch, empty or non-finite input.
        UndefinedMetricError: if ``y_true`` is constant (``SS_tot = 0``).
    """
    true, pred = _check_pair(y_true, y_pred)
    ss_tot = float(np.sum((true - true.mean()) ** 2))
    if ss_tot == 0.0:
        raise UndefinedMetricError("R² is undefined when y_true is constant")
    return 1.0 - float(np.sum((true - pred) ** 2)) / ss_tot


def auroc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney statistic (ties count 1/2).

    Args:
        y_true: ``(n,)`` labels, 0/1 or bool; 1 is the positive class.
        y_score: ``(n,)`` scores, higher means more likely positive.

    Returns:
        AUROC in [0, 1]; equals ``sklearn.metrics.roc_auc_score``.

    Raises:
        ValueError: on non-binary labels, shape mismatch or non-finite scores.
        UndefinedMetricError: if only one class is present.
    """
    labels = as_binary_labels(y_true)
    _, score = _check_pair(labels.astype(np.float64), y_score)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise UndefinedMetricError(
            f"AUROC is undefined with one class ({n_pos} positives, {n_neg} negatives)"
        )
    ranks = midrank(score)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def per_label_auroc(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """AUROC of each column of a multi-label problem; NaN where a column has one class.

    Args:
        y_true: ``(n, k)`` 0/1 labels.
        y_score: ``(n, k)`` scores.

    Returns:
        ``(k,)`` float64 array.

    Raises:
        ValueError: if the arrays are not 2-D of the same shape.
    """
    true = np.asarray(y_true)
    score = np.asarray(y_score)
    if true.ndim != 2 or true.shape != score.shape:
        raise ValueError(
            f"y_true and y_score must be 2-D of the same shape, got {true.shape} and {score.shape}"
        )
    out = np.full(true.shape[1], np.nan)
    for column in range(true.shape[1]):
        try:
            out[column] = auroc(true[:, column], score[:, column])
        except UndefinedMetricError:
            pass
    return out


def macro_auroc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Unweighted mean AUROC over the labels that have both classes in ``y_true``.

    Labels with a single class are skipped (see :func:`macro_auroc_report` for
    which). Under a bootstrap the set of scored labels can therefore vary from
    resample to resample for rare labels.

    Args:
        y_true: ``(n, k)`` 0/1 labels.
        y_score: ``(n, k)`` scores.

    Raises:
        UndefinedMetricError: if no label has both classes.
    """
    values = per_label_auroc(y_true, y_score)
    if np.all(np.isnan(values)):
        raise UndefinedMetricError("macro AUROC is undefined: every label has a single class")
    return float(np.nanmean(values))


class MacroAUROCReport(TypedDict):
    """What :func:`macro_auroc_report` returns."""

    macro_auroc: float
    per_label: dict[str, float]
    skipped: list[str]
    n_labels_scored: int


def macro_auroc_report(
    y_true: np.ndarray, y_score: np.ndarray, label_names: Sequence[str] | None = None
) -> MacroAUROCReport:
    """Macro AUROC with the per-label values and the labels skipped for having one class.

    Args:
        y_true: ``(n, k)`` 0/1 labels.
        y_score: ``(n, k)`` scores.
        label_names: ``k`` names; defaults to the column indices as strings.

    Returns:
        ``macro_auroc`` (NaN if no label could be scored), ``per_label`` (name ->
        AUROC, NaN if skipped), ``skipped`` names, ``n_labels_scored``.

    Raises:
        ValueError: if ``label_names`` does not have ``k`` entries.
    """
    values = per_label_auroc(y_true, y_score)
    names = [str(i) for i in range(values.size)] if label_names is None else list(label_names)
    if len(names) != values.size:
        raise ValueError(f"{len(names)} label names for {values.size} label columns")
    scored = ~np.isnan(values)
    return {
        "macro_auroc": float(np.mean(values[scored])) if scored.any() else float("nan"),
        "per_label": {name: float(v) for name, v in zip(names, values, strict=True)},
        "skipped": [name for name, ok in zip(names, scored, strict=True) if not ok],
        "n_labels_scored": int(scored.sum()),
    }


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of exactly matching labels (any label type: ints, strings, bools).

    Args:
        y_true: ``(n,)`` labels.
        y_pred: ``(n,)`` predicted labels (not probabilities).

    Raises:
        ValueError: on shape mismatch or empty input.
    """
    true = np.asarray(y_true)
    pred = np.asarray(y_pred)
    if true.shape != pred.shape or true.ndim != 1:
        raise ValueError(f"y_true {true.shape} and y_pred {pred.shape} must be equal 1-D shapes")
    if true.size == 0:
        raise ValueError("cannot score an empty set of samples")
    return float(np.mean(true == pred))
