"""Small MLP heads on precomputed features, as in the CAPE paper.

Two hidden layers with ReLU and dropout 0.2 (age 256-128, sex 256-256), Adam
at 1e-4, the learning rate divided by 10 when the validation metric stops
improving (``ReduceLROnPlateau``), and early stopping on the validation metric
(MAE for age, AUROC for sex, macro AUROC for multi-label) with the best
epoch's weights restored at the end.

Features are standardised with the training split's statistics only (plain
z-scoring by default, as the authors' code; a std floor is an option, see
:mod:`cape.heads.scaling`). The regression target is, by default
(``target_transform="standardise"``), standardised with the training mean and
std for optimisation (so the same learning rate suits years and other units)
with a linear output; ``target_transform="age-sigmoid"`` is the authors' age
head instead: target ``(age - 7) / 100`` and a sigmoid output, so predictions
lie in (7, 107) years. Predictions are always returned in the target's unit
(years for age).

Determinism: weight initialisation and dropout draw from PyTorch's CPU
generator seeded with ``seed`` inside ``torch.random.fork_rng`` (the global
state is restored afterwards), and batches are shuffled by a separate seeded
``torch.Generator``. With a fixed thread count the same seed gives the same
weights bit for bit. Training runs on the CPU; the heads are tiny.

The estimators follow scikit-learn's conventions: the constructor only stores
parameters, ``fit`` returns ``self``, learned attributes end in ``_``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.special import expit
from sklearn.base import ClassifierMixin, RegressorMixin
from torch import nn

from cape.heads.base import TaskKind, binary_classes
from cape.heads.mlp_base import MLPHeadBase

logger = logging.getLogger(__name__)

# The authors' age head: target (age - AGE_OFFSET) / AGE_SCALE through a sigmoid.
AGE_OFFSET_YEARS = 7.0
AGE_SCALE_YEARS = 100.0


def age_to_sigmoid_target(age: np.ndarray) -> np.ndarray:
    """``(age - 7) / 100``: the authors' age target (in (0, 1) for ages 7-107)."""
    return (np.asarray(age, dtype=np.float64) - AGE_OFFSET_YEARS) / AGE_SCALE_YEARS


def sigmoid_output_to_age(output: np.ndarray) -> np.ndarray:
    """Inverse of :func:`age_to_sigmoid_target` applied to a sigmoid output: ``100 p + 7``."""
    return np.asarray(output, dtype=np.float64) * AGE_SCALE_YEARS + AGE_OFFSET_YEARS


class _SigmoidMSELoss(nn.Module):
    """Mean squared error between ``sigmoid(logits)`` and targets in (0, 1)."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(torch.sigmoid(logits), targets)


class MLPRegressorHead(RegressorMixin, MLPHeadBase):
    """MLP regression head (age); predictions in the target's unit.

    Defaults to hidden sizes (256, 128). Trained with mean squared error on the
    standardised target and a linear output (``target_transform="standardise"``),
    or on ``(age - 7) / 100`` with a sigmoid output (``"age-sigmoid"``, the
    authors' age head; mean squared error on the sigmoid's output). Early-stops
    on validation MAE in the target's unit. See :class:`MLPHeadBase` for the
    parameters.
    """

    _kind: TaskKind = "regression"
    _default_hidden_sizes = (256, 128)

    def _fit_targets(self, targets: np.ndarray) -> np.ndarray:
        if self.target_transform == "age-sigmoid":
            encoded = age_to_sigmoid_target(targets)
            outside = int(((encoded <= 0) | (encoded >= 1)).sum())
            if outside:
                logger.warning(
                    "age-sigmoid head: %d training targets outside 7-107 years cannot be reached",
                    outside,
                )
            return encoded.astype(np.float32)[:, None]
        self.target_mean_ = float(targets.mean())
        std = float(targets.std())
        if std == 0.0:
            raise ValueError("y is constant in the training data; there is nothing to learn")
        self.target_scale_ = std
        return ((targets - self.target_mean_) / std).astype(np.float32)[:, None]

    def _encode_targets(self, targets: np.ndarray) -> np.ndarray:
        return targets

    def _loss(self) -> nn.Module:
        return _SigmoidMSELoss() if self.target_transform == "age-sigmoid" else nn.MSELoss()

    def _decode(self, outputs: np.ndarray) -> np.ndarray:
        if self.target_transform == "age-sigmoid":
            return sigmoid_output_to_age(expit(outputs[:, 0]))
        return outputs[:, 0] * self.target_scale_ + self.target_mean_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(n,)`` float64 predictions in the target's unit for ``(n, d)`` features."""
        return self._decode(self._raw_predict(X))


class MLPClassifierHead(ClassifierMixin, MLPHeadBase):
    """Binary MLP classification head (sex); ``classes_[1]`` is the positive class.

    Defaults to hidden sizes (256, 256). Trained with binary cross-entropy;
    early-stops on validation AUROC. Labels may be of any type with exactly two
    values (``"F"``/``"M"``, 0/1, ...).
    """

    _kind: TaskKind = "binary"
    _default_hidden_sizes = (256, 256)

    def _fit_targets(self, targets: np.ndarray) -> np.ndarray:
        self.classes_ = binary_classes(targets, "y")
        return (targets == self.classes_[1]).astype(np.float32)[:, None]

    def _encode_targets(self, targets: np.ndarray) -> np.ndarray:
        unknown = np.setdiff1d(np.unique(targets), self.classes_)
        if unknown.size:
            raise ValueError(f"y_val has labels not seen in y: {unknown[:5].tolist()}")
        encoded = targets == self.classes_[1]
        if encoded.all() or not encoded.any():
            raise ValueError("y_val holds a single class; AUROC for early stopping is undefined")
        return encoded

    def _loss(self) -> nn.Module:
        return nn.BCEWithLogitsLoss()

    def _decode(self, outputs: np.ndarray) -> np.ndarray:
        return expit(outputs[:, 0])

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """``(n,)`` logits of the positive class."""
        return self._raw_predict(X)[:, 0]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``(n, 2)`` probabilities of ``classes_[0]`` and ``classes_[1]``."""
        positive = self._decode(self._raw_predict(X))
        return np.stack([1.0 - positive, positive], axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(n,)`` labels from ``classes_`` (positive when its probability >= 0.5)."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


class MultiLabelHead(MLPHeadBase):
    """Multi-label MLP head (e.g. diagnostic superclasses), one sigmoid output per label.

    Defaults to hidden sizes (256, 128). Trained with binary cross-entropy
    summed over labels; early-stops on validation macro AUROC over the labels
    with both classes in the validation set.
    """

    _kind: TaskKind = "multilabel"
    _default_hidden_sizes = (256, 128)

    def _fit_targets(self, targets: np.ndarray) -> np.ndarray:
        self.n_labels_ = targets.shape[1]
        prevalence = targets.mean(axis=0)
        self.constant_labels_ = np.flatnonzero((prevalence == 0) | (prevalence == 1))
        if self.constant_labels_.size:
            logger.warning(
                "labels %s have a single class in training; their scores are meaningless",
                self.constant_labels_.tolist(),
            )
        return targets.astype(np.float32)

    def _encode_targets(self, targets: np.ndarray) -> np.ndarray:
        if targets.shape[1] != self.n_labels_:
            raise ValueError(f"y_val has {targets.shape[1]} labels, y has {self.n_labels_}")
        prevalence = targets.mean(axis=0)
        if np.all((prevalence == 0) | (prevalence == 1)):
            raise ValueError("every label of y_val has a single class; macro AUROC is undefined")
        return targets

    def _loss(self) -> nn.Module:
        return nn.BCEWithLogitsLoss()

    def _decode(self, outputs: np.ndarray) -> np.ndarray:
        return expit(outputs)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``(n, k)`` probability of each label."""
        return self._decode(self._raw_predict(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(n, k)`` int 0/1 predictions (probability >= 0.5)."""
        return (self.predict_proba(X) >= 0.5).astype(int)
