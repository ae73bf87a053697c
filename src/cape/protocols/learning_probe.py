"""The learning control with linear probes: does pretraining beat its own initial weights?

The OOD protocol's heads are small MLPs trained by SGD with early stopping; in the
simulated studies their in-distribution error varies between head runs and between
untrained networks by as much as the effect the learning control looks for
(docs/simulator.md, "Training length"). This diagnostic is the lower-variance
instrument, declared on 2026-12-03 before it was run on any study it reports on:

- per task, a **linear probe** on each feature set: features z-scored on the fit set,
  ridge regression (regression tasks) or L2 logistic regression (binary tasks), the
  penalty chosen from a fixed grid by 5-fold cross-validation grouped by patient on
  the fit set (no randomness: the same features give the same probe);
- fit on the training cohort's train and val splits, scored on its test split (the
  OOD protocol's source setting, without the subsampling);
- each pretrained feature set against its **untrained twin** (the untrained encoder
  with the same encoder seed, i.e. its initial weights; the first untrained one where
  no twin exists): the difference of the test metric, signed so that > 0 means the
  pretrained features are better, with a 95% percentile interval from a **cluster
  bootstrap over test patients** (a patient's ECGs stay together), the same resamples
  for every pair.

The verdict rule lives in :mod:`cape.report.controls`: *passes* when every encoder
seed's interval lies above 0, *fails* when no seed's difference is above 0, otherwise
*inconclusive*.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold

from cape.errors import CapeError

logger = logging.getLogger(__name__)

RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-2, 4, 13))
LOGISTIC_CS = tuple(float(c) for c in np.logspace(-3, 2, 6))
CV_FOLDS = 5
UNTRAINED = "untrained"


def _standardise(fit: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean = fit.mean(axis=0)
    std = fit.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [(x - mean) / std for x in (fit, *others)]


def _model(kind: str, penalty: float) -> Any:
    if kind == "regression":
        return Ridge(alpha=penalty)
    return LogisticRegression(C=penalty, max_iter=2000)


def _predict(model: Any, kind: str, x: np.ndarray) -> np.ndarray:
    if kind == "regression":
        return np.asarray(model.predict(x), dtype=np.float64)
    return np.asarray(model.decision_function(x), dtype=np.float64)


def fit_probe(
    kind: str,
    metric_fn: Any,
    higher_is_better: bool,
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    groups: np.ndarray,
    x_test: np.ndarray,
) -> tuple[np.ndarray, float]:
    """Predictions of a linear probe on ``x_test`` and the penalty chosen.

    The penalty (ridge ``alpha`` or logistic ``C``) is the grid value with the best
    metric of the pooled out-of-fold predictions of a 5-fold CV grouped by ``groups``;
    ties go to the first value tried, the weakest penalty (smallest alpha, largest C).
    """
    if kind not in ("regression", "binary"):
        raise CapeError(f"linear probe: task kind {kind!r} not supported (regression, binary)")
    x_fit, x_test = _standardise(np.asarray(x_fit, np.float64), np.asarray(x_test, np.float64))
    grid = RIDGE_ALPHAS if kind == "regression" else LOGISTIC_CS[::-1]
    folds = min(CV_FOLDS, len(np.unique(groups)))
    if folds < 2:
        raise CapeError("linear probe: the fit set needs at least 2 patients")
    splits = list(GroupKFold(n_splits=folds).split(x_fit, y_fit, groups))
    best, best_score = grid[0], -np.inf
    for penalty in grid:
        pooled = np.empty(len(y_fit))
        for train, held in splits:
            model = _model(kind, penalty).fit(x_fit[train], y_fit[train])
            pooled[held] = _predict(model, kind, x_fit[held])
        score = metric_fn(y_fit, pooled)
        score = score if higher_is_better else -score
        if score > best_score:
            best, best_score = penalty, score
    model = _model(kind, best).fit(x_fit, y_fit)
    return _predict(model, kind, x_test), best


def cluster_bootstrap(groups: np.ndarray, n_resamples: int, seed: int) -> list[np.ndarray]:
    """Row indices of ``n_resamples`` resamples that draw whole groups with replacement."""
    codes, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(codes))]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(codes), size=(n_resamples, len(codes)))
    return [np.concatenate([members[k] for k in row]) for row in draws]


def learning_probe_table(
    feature_sets: Sequence[Any],
    index: pd.DataFrame,
    train_cohort: str,
    tasks: Sequence[str] = ("age", "sex"),
    n_resamples: int = 2000,
    seed: int = 0,
    topcoded: str = "keep",
) -> pd.DataFrame:
    """One row per (task, feature set): the probe's test metric, and for pretrained
    feature sets the difference to the untrained twin with its bootstrap interval.

    Args:
        feature_sets: :class:`cape.protocols.FeatureSet` objects aligned to ``index``;
            untrained ones have ``baseline == "untrained"``.
        index: the aligned features index (``cohort``, ``split``, ``patient_id``, labels).
        train_cohort: the cohort the probes are fitted and scored on.
        tasks: regression or binary tasks of :data:`cape.protocols.tasks.TASKS`.
        n_resamples: cluster-bootstrap resamples over test patients.
        seed: seed of the resamples.
        topcoded: top-coded ages kept or excluded (as the OOD protocol).

    Returns:
        Columns ``task, train_cohort, metric, higher_is_better, model, encoder_seed, baseline, value,
        penalty, twin_seed, twin_value, difference, ci_low, ci_high, n_fit, n_test,
        n_test_patients, n_resamples`` (the twin columns NaN for untrained rows).

    Raises:
        CapeError: no untrained feature set, an unknown or unsupported task, or a
            training cohort without labelled train or test ECGs.
    """
    from cape.protocols.sampling import split_pools
    from cape.protocols.tasks import extract_labels

    untrained = [fs for fs in feature_sets if fs.baseline == UNTRAINED]
    if not untrained:
        raise CapeError("the linear-probe learning control needs an untrained encoder's features")
    patients_all = (index["cohort"].astype(str) + "/" + index["patient_id"].astype(str)).to_numpy()
    rows: list[dict[str, Any]] = []
    for task_name in tasks:
        labels = extract_labels(index, task_name, topcoded)  # type: ignore[arg-type]
        task = labels.task
        if task.kind not in ("regression", "binary"):
            logger.warning("linear probe: task %r (%s) skipped", task_name, task.kind)
            continue
        pools = split_pools(index, train_cohort, labels.labelled)
        fit_rows = np.sort(np.concatenate([pools["train"], pools["val"]]))
        test_rows = pools["test"]
        if fit_rows.size == 0 or test_rows.size == 0:
            raise CapeError(
                f"linear probe: cohort {train_cohort!r} has no labelled {task_name} ECGs in "
                "its train/val or test split"
            )
        y = labels.y.astype(np.float64)
        y_fit, y_test = y[fit_rows], y[test_rows]
        groups = patients_all[fit_rows]
        resamples = cluster_bootstrap(patients_all[test_rows], n_resamples, seed)
        predictions: dict[tuple[str, int], np.ndarray] = {}
        for fs in feature_sets:
            prediction, penalty = fit_probe(
                task.kind,
                task.metric_fn,
                task.higher_is_better,
                fs.features[fit_rows],
                y_fit,
                groups,
                fs.features[test_rows],
            )
            predictions[(fs.model, fs.encoder_seed)] = prediction
            rows.append(
                {
                    "task": task_name,
                    "train_cohort": train_cohort,
                    "metric": task.metric,
                    "higher_is_better": task.higher_is_better,
                    "model": fs.model,
                    "encoder_seed": int(fs.encoder_seed),
                    "baseline": fs.baseline,
                    "value": float(task.score(y_test, prediction)),
                    "penalty": penalty,
                    "n_fit": int(fit_rows.size),
                    "n_test": int(test_rows.size),
                    "n_test_patients": len(np.unique(patients_all[test_rows])),
                    "n_resamples": int(n_resamples),
                }
            )
        twins = {fs.encoder_seed: fs for fs in untrained}
        sign = 1.0 if task.higher_is_better else -1.0
        for row in rows:
            if row["task"] != task_name or row["baseline"] == UNTRAINED:
                continue
            twin = twins.get(row["encoder_seed"], untrained[0])
            mine = predictions[(row["model"], row["encoder_seed"])]
            theirs = predictions[(twin.model, twin.encoder_seed)]
            differences = []
            for sample in resamples:
                try:
                    a = task.metric_fn(y_test[sample], mine[sample])
                    b = task.metric_fn(y_test[sample], theirs[sample])
                except ValueError:  # e.g. one class only in a resample
                    continue
                differences.append(sign * (a - b))
            twin_value = float(task.score(y_test, theirs))
            low, high = (
                np.quantile(differences, [0.025, 0.975]) if differences else (np.nan, np.nan)
            )
            row.update(
                twin_seed=int(twin.encoder_seed),
                twin_value=twin_value,
                difference=sign * (row["value"] - twin_value),
                ci_low=float(low),
                ci_high=float(high),
            )
    table = pd.DataFrame(rows)
    for column in ("twin_seed", "twin_value", "difference", "ci_low", "ci_high"):
        if column not in table:
            table[column] = np.nan
    return table
