"""Cohort identifiability: can a linear model tell the cohort (or device) from the features?

Random batches let device artefacts become a shortcut (the feasibility
prototype saw cross-validated accuracy 0.97 against chance 0.33); in-distribution
batches should bring it towards chance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from tqdm.auto import tqdm

from cape.heads.base import check_features
from cape.heads.scaling import DEFAULT_RELATIVE_FLOOR, Standardizer
from cape.stats import (
    BootstrapCI,
    accuracy,
    bootstrap_ci,
    bootstrap_indices,
    macro_auroc,
)

logger = logging.getLogger(__name__)


@dataclass
class IdentifiabilityResult:
    """What :func:`cohort_identifiability` returns.

    Attributes:
        accuracy: out-of-fold accuracy of the cohort prediction.
        accuracy_ci: bootstrap CI of the accuracy.
        macro_auroc: out-of-fold macro one-vs-rest AUROC.
        macro_auroc_ci: bootstrap CI of the macro AUROC.
        chance_majority: accuracy of always predicting the largest class.
        chance_uniform: ``1 / k``.
        classes: the ``k`` class names (sorted), the columns of ``oof_probabilities``.
        class_counts: samples per class.
        n_splits: folds used.
        grouped: whether folds were grouped by patient.
        oof_probabilities: ``(n, k)`` out-of-fold class probabilities.
    """

    accuracy: float
    accuracy_ci: BootstrapCI
    macro_auroc: float
    macro_auroc_ci: BootstrapCI
    chance_majority: float
    chance_uniform: float
    classes: list[str]
    class_counts: dict[str, int]
    n_splits: int
    grouped: bool
    oof_probabilities: np.ndarray = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """Everything but the per-sample probabilities, as JSON-friendly values."""
        return {
            "accuracy": self.accuracy,
            "accuracy_ci": dict(self.accuracy_ci),
            "macro_auroc": self.macro_auroc,
            "macro_auroc_ci": dict(self.macro_auroc_ci),
            "chance_majority": self.chance_majority,
            "chance_uniform": self.chance_uniform,
            "classes": list(self.classes),
            "class_counts": dict(self.class_counts),
            "n_samples": int(self.oof_probabilities.shape[0]),
            "n_splits": self.n_splits,
            "grouped": self.grouped,
        }


def _folds(
    codes: np.ndarray, groups: np.ndarray | None, n_splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    placeholder = np.zeros((codes.size, 1))
    if groups is None:
        splitter: Any = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return list(splitter.split(placeholder, codes))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(placeholder, codes, groups))


def cohort_identifiability(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None = None,
    n_splits: int = 5,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = 1000,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    relative_std_floor: float = DEFAULT_RELATIVE_FLOOR,
    verbose: bool = False,
) -> IdentifiabilityResult:
    """Cross-validated multinomial logistic regression predicting cohort (or device) from features.

    Folds are stratified by class and, when ``groups`` (patient ids) are given,
    grouped so that no patient is in a fold's training and test part
    (``StratifiedGroupKFold``). Each fold standardises with its own training
    part (std floor as in the heads). Metrics are computed on the pooled
    out-of-fold predictions; their CIs come from a bootstrap over samples with
    indices drawn from ``seed``. If a class is absent from a fold's training
    part its probability there is 0.

    Args:
        features: ``(n, d)`` features.
        labels: ``(n,)`` cohort or device names (any hashable type).
        groups: ``(n,)`` patient ids, or None for ungrouped folds.
        n_splits: number of folds (>= 2).
        seed: seeds the fold assignment and the bootstrap.
        C: inverse L2 regularisation strength of the logistic regression.
        max_iter: lbfgs iteration limit.
        n_bootstrap: bootstrap resamples for the CIs.
        confidence: coverage of the CIs.
        relative_std_floor: see :func:`cape.heads.scaling.floored_std`.
        verbose: progress bar over folds.

    Raises:
        ValueError: on NaN features, mismatched lengths, fewer than two classes,
            ``n_splits < 2``, or a class with fewer than ``n_splits`` samples
            (patients, when grouped).
    """
    inputs = check_features(features, "features")
    label_array = np.asarray(labels)
    if label_array.shape != (inputs.shape[0],):
        raise ValueError(f"labels must be ({inputs.shape[0]},), got {label_array.shape}")
    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}")
    group_array = None if groups is None else np.asarray(groups)
    if group_array is not None and group_array.shape != label_array.shape:
        raise ValueError(f"groups must be ({inputs.shape[0]},), got {group_array.shape}")
    classes, codes = np.unique(label_array, return_inverse=True)
    n_classes = classes.size
    if n_classes < 2:
        raise ValueError(f"need at least two classes to identify, found {classes.tolist()}")
    counts = np.bincount(codes, minlength=n_classes)
    units = (
        counts
        if group_array is None
        else np.array([np.unique(group_array[codes == k]).size for k in range(n_classes)])
    )
    if units.min() < n_splits:
        thin = classes[units < n_splits].tolist()
        what = "patients" if group_array is not None else "samples"
        raise ValueError(f"classes {thin} have fewer {what} than n_splits={n_splits}")

    probabilities = np.zeros((inputs.shape[0], n_classes))
    folds = _folds(codes, group_array, n_splits, seed)
    for train, test in tqdm(folds, desc="identifiability folds", disable=not verbose):
        scaler = Standardizer(relative_floor=relative_std_floor).fit(inputs[train])
        model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
        model.fit(scaler.transform(inputs[train]), codes[train])
        probabilities[np.ix_(test, model.classes_)] = model.predict_proba(
            scaler.transform(inputs[test])
        )

    one_hot = np.eye(n_classes, dtype=np.int8)[codes]
    predicted = probabilities.argmax(axis=1)
    indices = bootstrap_indices(inputs.shape[0], n_bootstrap, seed)
    result = IdentifiabilityResult(
        accuracy=accuracy(codes, predicted),
        accuracy_ci=bootstrap_ci(accuracy, codes, predicted, indices, confidence),
        macro_auroc=macro_auroc(one_hot, probabilities),
        macro_auroc_ci=bootstrap_ci(macro_auroc, one_hot, probabilities, indices, confidence),
        chance_majority=float(counts.max() / counts.sum()),
        chance_uniform=1.0 / n_classes,
        classes=[str(c) for c in classes],
        class_counts={str(c): int(n) for c, n in zip(classes, counts, strict=True)},
        n_splits=n_splits,
        grouped=group_array is not None,
        oof_probabilities=probabilities,
    )
    logger.info(
        "identifiability: accuracy %.3f (chance %.3f), macro AUROC %.3f",
        result.accuracy,
        result.chance_majority,
        result.macro_auroc,
    )
    return result
