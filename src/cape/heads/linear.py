"""Linear probe: ridge regression or logistic regression on standardised features.

The paper's PTB-XL linear evaluation (superclass / subclass macro AUROC) is a
logistic regression per label on frozen features. Features are standardised
with the training split's statistics (plain z-scoring by default, a std floor
optional: :mod:`cape.heads.scaling`), like the MLP heads.

``C`` is the inverse regularisation strength: logistic regression uses it
directly, ridge uses ``alpha = 1 / C``. Given several values of ``C`` and a
validation set, the probe keeps the one with the best validation metric.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression, Ridge

from cape.heads.base import (
    TASK_KINDS,
    TaskKind,
    binary_classes,
    check_features,
    check_targets,
    validation_metric,
)
from cape.heads.scaling import HEAD_RELATIVE_FLOOR, Standardizer

logger = logging.getLogger(__name__)


class LinearProbe(BaseEstimator):
    """Ridge (regression) or logistic regression (binary, one per label for multilabel).

    Args:
        task: ``"regression"``, ``"binary"`` or ``"multilabel"``.
        C: inverse regularisation strength, or several to choose from on the
            validation set (then ``fit`` needs ``X_val`` and ``y_val``).
        max_iter: iteration limit of the logistic regression solver (lbfgs).
        relative_std_floor: 0 (default) is plain z-scoring with the training
            statistics, as the authors' code; > 0 floors the std (see
            :func:`cape.heads.scaling.floored_std`; 0.1 was this project's former default).
        seed: passed to the solver (lbfgs itself is deterministic).
    """

    def __init__(
        self,
        task: TaskKind = "binary",
        C: float | Sequence[float] = 1.0,
        max_iter: int = 1000,
        relative_std_floor: float = HEAD_RELATIVE_FLOOR,
        seed: int = 0,
    ) -> None:
        self.task = task
        self.C = C
        self.max_iter = max_iter
        self.relative_std_floor = relative_std_floor
        self.seed = seed

    def _candidates(self) -> list[float]:
        c_param: Any = self.C
        # numbers.Real also covers NumPy scalars (np.float64, np.int64 from a config array).
        values = (
            [float(c_param)] if isinstance(c_param, numbers.Real) else [float(c) for c in c_param]
        )
        if not values or any(c <= 0 for c in values):
            raise ValueError(f"C must be positive (or a non-empty list of positives), got {self.C}")
        return values

    def _fit_one(self, inputs: np.ndarray, targets: np.ndarray, c_value: float) -> list[Any]:
        """Fitted estimators for one C: one for regression/binary, one per label (or a
        constant prevalence for labels with one class) for multilabel."""
        if self.task == "regression":
            return [Ridge(alpha=1.0 / c_value).fit(inputs, targets)]
        if self.task == "binary":
            model = LogisticRegression(C=c_value, max_iter=self.max_iter, random_state=self.seed)
            return [model.fit(inputs, targets == self.classes_[1])]
        models: list[Any] = []
        for column in range(targets.shape[1]):
            label = targets[:, column]
            if label.min() == label.max():
                models.append(float(label[0]))  # single class in training: constant prediction
            else:
                model = LogisticRegression(
                    C=c_value, max_iter=self.max_iter, random_state=self.seed
                )
                models.append(model.fit(inputs, label))
        return models

    def _scores(self, models: list[Any], inputs: np.ndarray) -> np.ndarray:
        """What the validation metric scores: values, positive probabilities or ``(n, k)`` probabilities."""
        if self.task == "regression":
            return np.asarray(models[0].predict(inputs), dtype=np.float64)
        columns = [
            np.full(inputs.shape[0], m) if isinstance(m, float) else m.predict_proba(inputs)[:, 1]
            for m in models
        ]
        return columns[0] if self.task == "binary" else np.stack(columns, axis=1)

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
    ) -> LinearProbe:
        """Fit the probe; with several ``C`` values, keep the best on ``(X_val, y_val)``.

        Args:
            X: ``(n, d)`` training features.
            y: ``(n,)`` targets (regression, binary) or ``(n, k)`` 0/1 (multilabel).
            X_val: ``(n_val, d)`` validation features (needed to choose among several C).
            y_val: validation targets.

        Returns:
            self, with ``scaler_``, ``models_``, ``C_`` (the chosen C),
            ``validation_scores_`` (C -> metric, empty without validation),
            ``classes_`` (binary), ``constant_labels_`` (multilabel).

        Raises:
            ValueError: on an unknown task, bad C, NaN input, or several C without validation data.
        """
        if self.task not in TASK_KINDS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {TASK_KINDS}")
        candidates = self._candidates()
        features = check_features(X, "X")
        targets = check_targets(y, self.task, features.shape[0], "y")
        if (X_val is None) != (y_val is None):
            raise ValueError("pass both X_val and y_val, or neither")
        if len(candidates) > 1 and X_val is None:
            raise ValueError(f"choosing among C={candidates} needs X_val and y_val")
        if self.task == "binary":
            self.classes_ = binary_classes(targets, "y")
        if self.task == "multilabel":
            prevalence = targets.mean(axis=0)
            self.constant_labels_ = np.flatnonzero((prevalence == 0) | (prevalence == 1))

        self.n_features_in_ = features.shape[1]
        self.scaler_ = Standardizer(relative_floor=self.relative_std_floor).fit(features)
        inputs = self.scaler_.transform(features)
        metric, higher_is_better = validation_metric(self.task)
        val_inputs = val_truth = None
        if X_val is not None and y_val is not None:
            val_inputs = self.scaler_.transform(check_features(X_val, "X_val"))
            val_truth = check_targets(y_val, self.task, val_inputs.shape[0], "y_val")
            if self.task == "binary":
                val_truth = val_truth == self.classes_[1]

        self.validation_scores_: dict[float, float] = {}
        best_models: list[Any] | None = None
        best_value = -np.inf
        for c_value in candidates:
            models = self._fit_one(inputs, targets, c_value)
            if val_inputs is None or val_truth is None:
                best_models, self.C_ = models, c_value
                continue
            score = float(metric(val_truth, self._scores(models, val_inputs)))
            self.validation_scores_[c_value] = score
            signed = score if higher_is_better else -score
            if signed > best_value:
                best_value, best_models, self.C_ = signed, models, c_value
        assert best_models is not None
        self.models_ = best_models
        return self

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "models_"):
            raise ValueError("this LinearProbe is not fitted yet; call fit first")
        return self.scaler_.transform(check_features(X, "X"))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``(n, 2)`` class probabilities (binary) or ``(n, k)`` label probabilities (multilabel).

        Raises:
            ValueError: for a regression probe.
        """
        if self.task == "regression":
            raise ValueError("a regression probe has no predict_proba; use predict")
        scores = self._scores(self.models_, self._inputs(X))
        return np.stack([1.0 - scores, scores], axis=1) if self.task == "binary" else scores

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(n,)`` values (regression), labels from ``classes_`` (binary) or ``(n, k)`` 0/1."""
        scores = self._scores(self.models_, self._inputs(X))
        if self.task == "regression":
            return scores
        if self.task == "binary":
            return self.classes_[(scores >= 0.5).astype(int)]
        return (scores >= 0.5).astype(int)
