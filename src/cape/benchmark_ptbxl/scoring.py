"""Folds and scoring of the PTB-XL benchmark: fold roles, macro AUROC and its bootstrap.

As the authors' code (github.com/helme/ecg_ptbxl_benchmarking,
``code/experiments/scp_experiment.py`` and ``code/utils/utils.py``):

- ``strat_fold`` 1-8 train, 9 validation, 10 test (PTB-XL's recommended folds);
- the metric is ``sklearn.metrics.roc_auc_score(y, p, average="macro")`` on fold 10;
- its uncertainty comes from 100 bootstrap resamples of the test records, drawn
  again until every label has a positive in the resample
  (``get_appropriate_bootstrap_samples``), shared by every model, with the 5 %
  and 95 % quantiles reported (a 90 % percentile interval); the leaderboard
  prints ``point(±)`` with ± the larger distance from the point to either quantile.

Differences, stated: a label with no positive or no negative in the test fold
cannot be scored by AUROC; the authors' code would fail on it, here it is left
out of the macro average and named (``skipped``). Resamples must also keep a
negative of every scored label (always the case on PTB-XL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cape.errors import CapeError
from cape.stats import bootstrap_ci, macro_auroc, macro_auroc_report

TRAIN_FOLDS = (1, 2, 3, 4, 5, 6, 7, 8)
VALIDATION_FOLD = 9
TEST_FOLD = 10
BENCHMARK_RESAMPLES = 100
BENCHMARK_CONFIDENCE = 0.90
# Rejection sampling gives up after this many draws per wanted resample.
MAX_DRAWS_PER_RESAMPLE = 1000


def fold_roles(strat_fold: Sequence[object] | pd.Series, source: str = "strat_fold") -> np.ndarray:
    """``"train"`` (folds 1-8), ``"val"`` (9) or ``"test"`` (10) per record.

    Raises:
        CapeError: a missing fold or one that is not an integer 1-10, naming ``source``.
    """
    values = pd.to_numeric(pd.Series(list(strat_fold), dtype=object), errors="coerce")
    numbers = values.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers) | (numbers != np.round(numbers)) | (numbers < 1) | (numbers > 10)
    if bad.any():
        examples = pd.Series(list(strat_fold), dtype=object)[bad].head(3).tolist()
        raise CapeError(
            f"{source}: {int(bad.sum())} of {bad.size} records have no strat_fold 1-10 "
            f"(e.g. {examples}); the PTB-XL benchmark needs PTB-XL's strat_fold for every record"
        )
    roles = np.where(numbers <= TRAIN_FOLDS[-1], "train", "val").astype(object)
    roles[numbers == TEST_FOLD] = "test"
    return roles


def benchmark_resamples(
    y_true: np.ndarray,
    n_resamples: int = BENCHMARK_RESAMPLES,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Bootstrap resamples of the test records in which every label has both classes.

    Args:
        y_true: ``(n, k)`` 0/1 targets of the scored labels (each with both classes).
        n_resamples: resamples wanted.
        seed: seed of the generator.

    Returns:
        ``(indices (n_resamples, n), n_draws)``: the accepted resamples and how
        many were drawn to get them.

    Raises:
        CapeError: fewer than ``n_resamples`` accepted after
            ``MAX_DRAWS_PER_RESAMPLE * n_resamples`` draws (labels far too rare).
    """
    truth = np.asarray(y_true, dtype=bool)
    if truth.ndim != 2 or truth.shape[0] == 0 or n_resamples < 1:
        raise ValueError(f"need (n, k) targets and n_resamples >= 1, got {truth.shape}")
    n = truth.shape[0]
    rng = np.random.default_rng(seed)
    accepted: list[np.ndarray] = []
    n_draws = 0
    limit = MAX_DRAWS_PER_RESAMPLE * n_resamples
    while len(accepted) < n_resamples:
        if n_draws >= limit:
            raise CapeError(
                f"only {len(accepted)} of {n_resamples} bootstrap resamples of the {n} test "
                f"records kept every label's positives and negatives after {n_draws} draws; "
                "the test fold is too small for these labels"
            )
        batch = rng.integers(0, n, size=(n_resamples, n))
        n_draws += n_resamples
        positives = truth[batch].sum(axis=1)  # (n_resamples, k)
        ok = np.all((positives > 0) & (positives < n), axis=1)
        accepted.extend(batch[ok])
    return np.stack(accepted[:n_resamples]), n_draws


@dataclass
class LabelSetScore:
    """Macro AUROC of one model on one label set's test fold, with its bootstrap interval.

    Attributes:
        macro_auroc: over the scored labels (NaN if none).
        ci_low, ci_high: percentile interval over the resamples.
        plus_minus: the leaderboard's ±: max(ci_high - point, point - ci_low).
        confidence: coverage of the interval (the benchmark: 0.90).
        n_resamples: resamples used.
        scored: labels with both classes in the test fold.
        skipped: labels left out (one class in the test fold).
        per_label: label -> AUROC (NaN if skipped).
    """

    macro_auroc: float
    ci_low: float
    ci_high: float
    plus_minus: float
    confidence: float
    n_resamples: int
    scored: tuple[str, ...]
    skipped: tuple[str, ...]
    per_label: dict[str, float] = field(default_factory=dict)


def scorable_columns(y_true: np.ndarray) -> np.ndarray:
    """Columns of ``(n, k)`` targets with at least one positive and one negative."""
    truth = np.asarray(y_true)
    positives = truth.sum(axis=0)
    return np.flatnonzero((positives > 0) & (positives < truth.shape[0]))


def score_label_set(
    y_true: np.ndarray,
    y_score: np.ndarray,
    classes: Sequence[str],
    indices: np.ndarray | None,
    confidence: float = BENCHMARK_CONFIDENCE,
) -> LabelSetScore:
    """Macro AUROC and its bootstrap interval on shared resamples.

    Args:
        y_true: ``(n, k)`` 0/1 test targets.
        y_score: ``(n, k)`` scores.
        classes: the ``k`` label names.
        indices: ``(n_resamples, n)`` from :func:`benchmark_resamples` on the
            scored columns (shared by every model), or None for no interval.
        confidence: coverage of the percentile interval.

    Raises:
        ValueError: shapes differ.
    """
    truth = np.asarray(y_true)
    score = np.asarray(y_score, dtype=np.float64)
    if truth.shape != score.shape or truth.ndim != 2:
        raise ValueError(f"y_true {truth.shape} and y_score {score.shape} must be equal (n, k)")
    report = macro_auroc_report(truth, score, list(classes))
    columns = scorable_columns(truth)
    scored = tuple(str(classes[c]) for c in columns)
    point = report["macro_auroc"]
    low = high = float("nan")
    n_used = 0
    if columns.size and indices is not None:
        interval = bootstrap_ci(
            macro_auroc, truth[:, columns], score[:, columns], indices, confidence
        )
        low, high, n_used = interval["low"], interval["high"], interval["n_resamples"]
    plus_minus = max(high - point, point - low) if np.isfinite(low) else float("nan")
    return LabelSetScore(
        macro_auroc=point,
        ci_low=low,
        ci_high=high,
        plus_minus=plus_minus,
        confidence=confidence,
        n_resamples=n_used,
        scored=scored,
        skipped=tuple(report["skipped"]),
        per_label=report["per_label"],
    )


def leaderboard_text(score: float, plus_minus: float) -> str:
    """The leaderboard's ``0.925(07)``: three decimals and the ± in thousandths."""
    if not np.isfinite(score):
        return "--"
    if not np.isfinite(plus_minus):
        return f"{score:.3f}"
    return f"{score:.3f}({int(plus_minus * 1000):02d})"
