"""DeLong's test for correlated AUROCs and DeLong confidence intervals for one AUROC.

DeLong, DeLong & Clarke-Pearson (1988), *Comparing the areas under two or more
correlated receiver operating characteristic curves: a nonparametric
approach*, Biometrics 44(3):837-845. The variance uses the structural
components (placement values) V10 of each positive and V01 of each negative:

    V10(x_i) = 1/n · Σ_j ψ(x_i, y_j),  V01(y_j) = 1/m · Σ_i ψ(x_i, y_j),
    ψ(x, y) = 1 if x > y, 1/2 if x = y, 0 otherwise,

and ``Var(AUC) = S10 / m + S01 / n`` with S10, S01 the sample covariances of
the components. Computing them naively costs O(m·n); Sun & Xu (2014) get them
from midranks in O((m+n) log(m+n)): with Tz the midranks of all scores, Tx of
the positives alone and Ty of the negatives alone,
``V10 = (Tz[pos] - Tx) / n`` and ``V01 = 1 - (Tz[neg] - Ty) / m``.
"""

from __future__ import annotations

from typing import Literal, TypedDict

import numpy as np
from scipy import special
from scipy import stats as scipy_stats

from cape.stats.metrics import as_binary_labels
from cape.stats.ranks import midrank_rows

# Variances below this are treated as zero (both AUROCs exactly 0 or 1, identical scores).
_ZERO_VARIANCE = 1e-15


class DeLongTest(TypedDict):
    """What :func:`delong_test` returns."""

    test: str
    auc_a: float
    auc_b: float
    difference: float  # auc_a - auc_b
    se: float  # standard error of the difference
    z: float
    p_value: float  # two-sided
    n_positive: int
    n_negative: int
    note: str


class DeLongCI(TypedDict):
    """What :func:`delong_ci` returns."""

    auc: float
    se: float
    low: float
    high: float
    confidence: float
    method: str
    n_positive: int
    n_negative: int
    note: str


def delong_placements(
    y_true: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUROCs and DeLong's structural components of ``k`` classifiers (Sun & Xu's algorithm).

    Args:
        y_true: ``(n,)`` 0/1 or bool labels.
        scores: ``(k, n)`` scores of ``k`` classifiers (or ``(n,)`` for one).

    Returns:
        ``aucs`` ``(k,)``, ``v10`` ``(k, n_positive)``, ``v01`` ``(k, n_negative)``.

    Raises:
        ValueError: on non-binary labels, shape mismatch, non-finite scores, or
            fewer than 2 positives or 2 negatives (no covariance can be estimated).
    """
    labels = as_binary_labels(y_true)
    score_rows = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if labels.ndim != 1 or score_rows.ndim != 2 or score_rows.shape[1] != labels.size:
        raise ValueError(f"labels {labels.shape} and scores {np.shape(scores)} do not match")
    if not np.all(np.isfinite(score_rows)):
        raise ValueError("scores contain NaN/inf; exclude those samples before DeLong's test")
    positives = score_rows[:, labels]
    negatives = score_rows[:, ~labels]
    m, n = positives.shape[1], negatives.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least 2 positives and 2 negatives, got {m} and {n}")
    tx = midrank_rows(positives)
    ty = midrank_rows(negatives)
    tz = midrank_rows(np.concatenate([positives, negatives], axis=1))
    aucs = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return aucs, v10, v01


def delong_covariance(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUROCs of ``k`` classifiers on the same samples and DeLong's ``(k, k)`` covariance.

    Args:
        y_true: ``(n,)`` 0/1 or bool labels.
        scores: ``(k, n)`` scores (or ``(n,)`` for one classifier).

    Returns:
        ``aucs`` ``(k,)`` and ``covariance`` ``(k, k)``.

    Raises:
        ValueError: see :func:`delong_placements`.
    """
    aucs, v10, v01 = delong_placements(y_true, scores)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return aucs, s10 / m + s01 / n


def delong_test(y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> DeLongTest:
    """Two-sided DeLong test of ``AUROC(a) = AUROC(b)`` on the same samples.

    ``z = (AUC_a - AUC_b) / sqrt(Var_a + Var_b - 2 Cov_ab)``, p from the standard
    normal. If the variance of the difference is zero (e.g. both classifiers
    separate the classes perfectly) the test is degenerate: p = 1 when the
    AUROCs are equal and 0 otherwise, with a note.

    Args:
        y_true: ``(n,)`` 0/1 or bool labels.
        score_a: ``(n,)`` scores of classifier a.
        score_b: ``(n,)`` scores of classifier b.

    Raises:
        ValueError: see :func:`delong_placements`.
    """
    aucs, cov = delong_covariance(y_true, np.stack([np.asarray(score_a), np.asarray(score_b)]))
    difference = float(aucs[0] - aucs[1])
    variance = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    labels = as_binary_labels(y_true)
    note = ""
    if variance <= _ZERO_VARIANCE:
        se = 0.0
        z = 0.0 if difference == 0.0 else float(np.sign(difference) * np.inf)
        p_value = 1.0 if difference == 0.0 else 0.0
        note = "variance of the difference is zero; test is degenerate"
    else:
        se = float(np.sqrt(variance))
        z = difference / se
        p_value = float(2.0 * scipy_stats.norm.sf(abs(z)))
    return {
        "test": "delong",
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "difference": difference,
        "se": se,
        "z": z,
        "p_value": p_value,
        "n_positive": int(labels.sum()),
        "n_negative": int((~labels).sum()),
        "note": note,
    }


def delong_ci(
    y_true: np.ndarray,
    y_score: np.ndarray,
    confidence: float = 0.95,
    method: Literal["logit", "plain"] = "logit",
) -> DeLongCI:
    """Confidence interval of one AUROC from DeLong's variance.

    ``plain`` is the Wald interval ``AUC ± z·SE`` clipped to [0, 1]. ``logit``
    (the default) builds the Wald interval on ``logit(AUC)`` with the delta-method
    standard error ``SE / (AUC (1 - AUC))`` and maps it back, so it stays inside
    (0, 1) and covers better for AUROCs near 1 (Qin & Hotilovac 2008, Stat
    Methods Med Res 17:207-221). When the variance is zero (AUROC 0 or 1) both
    give the point ``[AUC, AUC]`` with a note.

    Args:
        y_true: ``(n,)`` 0/1 or bool labels.
        y_score: ``(n,)`` scores.
        confidence: coverage, e.g. 0.95.
        method: ``"logit"`` or ``"plain"``.

    Raises:
        ValueError: on bad method or confidence, or see :func:`delong_placements`.
    """
    if method not in ("logit", "plain"):
        raise ValueError(f"method must be 'logit' or 'plain', got {method!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    aucs, cov = delong_covariance(y_true, np.asarray(y_score)[None, :])
    auc, variance = float(aucs[0]), float(cov[0, 0])
    labels = as_binary_labels(y_true)
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2.0))
    se = float(np.sqrt(max(variance, 0.0)))
    note = ""
    if variance <= _ZERO_VARIANCE or auc in (0.0, 1.0):
        low = high = auc
        note = "DeLong variance is zero; interval collapses to the point estimate"
    elif method == "plain":
        low, high = max(0.0, auc - z * se), min(1.0, auc + z * se)
    else:
        logit_se = se / (auc * (1.0 - auc))
        centre = float(special.logit(auc))
        low = float(special.expit(centre - z * logit_se))
        high = float(special.expit(centre + z * logit_se))
    return {
        "auc": auc,
        "se": se,
        "low": float(low),
        "high": float(high),
        "confidence": confidence,
        "method": method,
        "n_positive": int(labels.sum()),
        "n_negative": int((~labels).sum()),
        "note": note,
    }
