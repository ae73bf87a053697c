"""What every head shares: the three task kinds, input checks, and the validation metric.

Task kinds:

- ``"regression"`` (age): one continuous target, scored by MAE (lower is better).
- ``"binary"`` (sex): two classes of any label type, scored by AUROC of the
  second class in sorted order (``classes_[1]``).
- ``"multilabel"`` (diagnostic superclasses): ``(n, k)`` 0/1 targets, scored
  by macro AUROC over labels with both classes present.

Heads never see missing labels: the caller excludes samples with NaN targets
(and counts them) before ``fit``. A NaN reaching a head is therefore a bug and
raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from cape.stats import auroc, macro_auroc, mean_absolute_error

TaskKind = Literal["regression", "binary", "multilabel"]
TASK_KINDS: tuple[TaskKind, ...] = ("regression", "binary", "multilabel")


def check_features(features: np.ndarray, name: str = "X") -> np.ndarray:
    """Validate ``(n, d)`` features and return them as float32.

    Raises:
        ValueError: if not 2-D, empty, or containing NaN/inf (naming how many rows and the first).
    """
    array = np.asarray(features, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty 2-D (n_samples, n_features) array, got {array.shape}"
        )
    bad_rows = np.flatnonzero(~np.all(np.isfinite(array), axis=1))
    if bad_rows.size:
        raise ValueError(
            f"{name} has {bad_rows.size} rows with NaN/inf (first: row {bad_rows[0]}); "
            "exclude them before fitting or predicting"
        )
    return array


def check_targets(
    targets: np.ndarray, kind: TaskKind, n_samples: int, name: str = "y"
) -> np.ndarray:
    """Validate targets for a task kind and the number of feature rows.

    Returns:
        float64 ``(n,)`` for regression, the labels unchanged ``(n,)`` for binary,
        int8 ``(n, k)`` for multilabel.

    Raises:
        ValueError: on a length mismatch, NaN targets, a regression or multilabel
            target that is not numeric, or multilabel values other than 0/1.
    """
    array = np.asarray(targets)
    if array.shape[0] != n_samples:
        raise ValueError(f"{name} has {array.shape[0]} rows but the features have {n_samples}")
    if kind == "binary":
        if array.ndim != 1:
            raise ValueError(f"{name} must be 1-D for a binary head, got {array.shape}")
        if array.dtype.kind == "f" and np.isnan(array).any():
            raise ValueError(
                f"{name} has {int(np.isnan(array).sum())} NaN labels; exclude them first"
            )
        if array.dtype == object and any(v is None for v in array):
            raise ValueError(f"{name} has missing (None) labels; exclude them first")
        return array
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise ValueError(f"{name} must be numeric for a {kind} head, got dtype {array.dtype}")
    numeric = array.astype(np.float64)
    n_bad = int((~np.isfinite(numeric)).sum())
    if n_bad:
        raise ValueError(f"{name} has {n_bad} NaN/inf targets; exclude those samples first")
    if kind == "regression":
        if numeric.ndim != 1:
            raise ValueError(f"{name} must be 1-D for a regression head, got {numeric.shape}")
        return numeric
    if numeric.ndim != 2:
        raise ValueError(f"{name} must be (n, k) for a multilabel head, got {numeric.shape}")
    if not np.all((numeric == 0) | (numeric == 1)):
        raise ValueError(f"{name} must hold only 0/1 for a multilabel head")
    return numeric.astype(np.int8)


def binary_classes(labels: np.ndarray, name: str = "y") -> np.ndarray:
    """The two sorted classes of binary labels (``classes_[1]`` is the positive one).

    Raises:
        ValueError: if there are not exactly two distinct labels.
    """
    classes = np.unique(labels)
    if classes.size != 2:
        raise ValueError(
            f"{name} must contain exactly two classes for a binary head, found {classes[:5].tolist()}"
        )
    return classes


def validation_metric(kind: TaskKind) -> tuple[Callable[[np.ndarray, np.ndarray], float], bool]:
    """The metric a head of this kind early-stops and selects on, and whether higher is better.

    The metric takes ``(y_true, prediction)`` with regression predictions in the
    target's unit, binary 0/1 truth with positive-class scores, and multilabel
    ``(n, k)`` 0/1 truth with ``(n, k)`` scores.

    Raises:
        ValueError: on an unknown kind.
    """
    if kind == "regression":
        return mean_absolute_error, False
    if kind == "binary":
        return auroc, True
    if kind == "multilabel":
        return macro_auroc, True
    raise ValueError(f"unknown task kind {kind!r}; expected one of {TASK_KINDS}")
