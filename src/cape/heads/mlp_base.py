"""The network and training loop shared by the MLP heads of :mod:`cape.heads.mlp`.

Subclasses say how targets are encoded, which loss to use and how outputs
become predictions; this module owns standardisation, seeding, the epoch loop,
the plateau schedule, early stopping and restoring the best weights.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from torch import nn
from tqdm.auto import tqdm

from cape.heads.base import (
    TaskKind,
    check_features,
    check_targets,
    validation_metric,
)
from cape.heads.scaling import HEAD_RELATIVE_FLOOR, Standardizer

logger = logging.getLogger(__name__)

_PREDICT_BATCH = 8192
TARGET_TRANSFORMS = ("standardise", "age-sigmoid")


def build_mlp(
    n_inputs: int, hidden_sizes: tuple[int, ...], n_outputs: int, dropout: float
) -> nn.Sequential:
    """``Linear -> ReLU -> Dropout`` per hidden size, then a linear output layer."""
    layers: list[nn.Module] = []
    width = n_inputs
    for hidden in hidden_sizes:
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


class MLPHeadBase(BaseEstimator):
    """Shared training loop; subclasses define the target encoding, loss and outputs.

    Args:
        hidden_sizes: widths of the hidden layers; ``None`` uses the class default.
        dropout: dropout probability after each hidden layer.
        learning_rate: Adam's initial learning rate.
        weight_decay: Adam's L2 penalty.
        batch_size: samples per optimisation step.
        max_epochs: upper bound on passes over the training data.
        patience: epochs without improvement of the validation metric before stopping.
        lr_patience: epochs without improvement before the learning rate is reduced.
        lr_factor: factor applied to the learning rate on a plateau.
        min_learning_rate: the learning rate is never reduced below this.
        min_delta: smallest change of the validation metric that counts as improvement.
        validation_fraction: share of the training data held out for early stopping
            when ``fit`` gets no ``X_val``; 0 trains for ``max_epochs`` without
            early stopping. Pass a patient-disjoint ``X_val`` when patients have
            several ECGs: a random hold-out leaks patients into validation.
        relative_std_floor: 0 (default) is plain z-scoring with the training
            statistics, as the authors' code; > 0 floors the std (see
            :func:`cape.heads.scaling.floored_std`; 0.1 was this project's former default).
        target_transform: regression only: ``"standardise"`` (default: the target
            standardised with its training mean and std, linear output) or
            ``"age-sigmoid"`` (the authors' age head: target ``(age - 7) / 100``,
            sigmoid output, so predictions lie in (7, 107) years).
        seed: seeds initialisation, dropout, shuffling and the internal hold-out.
        verbose: show a progress bar over epochs.

    The paper fixes the architecture, dropout, optimiser and learning rate; the
    batch size, epoch limit, patience and plateau schedule are not published
    and the defaults here are this project's choices.
    """

    _kind: TaskKind
    _default_hidden_sizes: tuple[int, ...]

    def __init__(
        self,
        hidden_sizes: tuple[int, ...] | None = None,
        dropout: float = 0.2,
        learning_rate: float = 1e-4,
        weight_decay: float = 0.0,
        batch_size: int = 128,
        max_epochs: int = 200,
        patience: int = 15,
        lr_patience: int = 5,
        lr_factor: float = 0.1,
        min_learning_rate: float = 1e-7,
        min_delta: float = 0.0,
        validation_fraction: float = 0.1,
        relative_std_floor: float = HEAD_RELATIVE_FLOOR,
        target_transform: str = "standardise",
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.hidden_sizes = hidden_sizes
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.lr_patience = lr_patience
        self.lr_factor = lr_factor
        self.min_learning_rate = min_learning_rate
        self.min_delta = min_delta
        self.validation_fraction = validation_fraction
        self.relative_std_floor = relative_std_floor
        self.target_transform = target_transform
        self.seed = seed
        self.verbose = verbose

    # -- what subclasses define --------------------------------------------------------------

    def _fit_targets(self, targets: np.ndarray) -> np.ndarray:
        """Learn the target encoding; return float32 ``(n, n_outputs)`` training targets."""
        raise NotImplementedError

    def _encode_targets(self, targets: np.ndarray) -> np.ndarray:
        """Validation targets in the form the validation metric expects."""
        raise NotImplementedError

    def _loss(self) -> nn.Module:
        raise NotImplementedError

    def _decode(self, outputs: np.ndarray) -> np.ndarray:
        """Network outputs ``(n, n_outputs)`` -> what the validation metric scores."""
        raise NotImplementedError

    # -- training ----------------------------------------------------------------------------

    def _check_params(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError("batch_size, max_epochs and patience must be >= 1")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if self.target_transform not in TARGET_TRANSFORMS:
            raise ValueError(
                f"target_transform must be one of {TARGET_TRANSFORMS}, got {self.target_transform!r}"
            )
        if self.target_transform != "standardise" and self._kind != "regression":
            raise ValueError(f"target_transform={self.target_transform!r} is for regression heads")
        hidden = self._resolved_hidden_sizes()
        if any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden sizes must be >= 1, got {hidden}")

    def _resolved_hidden_sizes(self) -> tuple[int, ...]:
        sizes = self._default_hidden_sizes if self.hidden_sizes is None else self.hidden_sizes
        return tuple(int(h) for h in sizes)

    def _hold_out(
        self, features: np.ndarray, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        if self.validation_fraction == 0.0:
            return features, targets, None, None
        stratify = targets if self._kind == "binary" else None
        train_x, val_x, train_y, val_y = train_test_split(
            features,
            targets,
            test_size=self.validation_fraction,
            random_state=self.seed,
            stratify=stratify,
        )
        return train_x, train_y, val_x, val_y

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
    ) -> MLPHeadBase:
        """Train on ``(X, y)``, early-stopping on ``(X_val, y_val)``.

        Args:
            X: ``(n, d)`` training features.
            y: training targets: ``(n,)`` for regression and binary, ``(n, k)`` 0/1 for multilabel.
            X_val: ``(n_val, d)`` validation features; if None, a seeded
                ``validation_fraction`` of the training data is held out.
            y_val: validation targets, shaped like ``y``.

        Returns:
            self, with ``model_``, ``scaler_``, ``best_epoch_`` (1-based),
            ``best_score_`` (None without validation), ``n_epochs_``,
            ``stopped_early_``, ``history_`` (one dict per epoch:
            ``epoch``, ``train_loss``, ``val_score``, ``learning_rate``).

        Raises:
            ValueError: on bad parameters, NaN in X or y, mismatched shapes, or a
                validation set on which the metric is undefined (one class).
        """
        self._check_params()
        features = check_features(X, "X")
        targets = check_targets(y, self._kind, features.shape[0], "y")
        if (X_val is None) != (y_val is None):
            raise ValueError("pass both X_val and y_val, or neither")
        val_features: np.ndarray | None
        val_targets: np.ndarray | None
        if X_val is None or y_val is None:
            features, targets, val_features, val_targets = self._hold_out(features, targets)
        else:
            val_features = check_features(X_val, "X_val")
            val_targets = check_targets(y_val, self._kind, val_features.shape[0], "y_val")
            if val_features.shape[1] != features.shape[1]:
                raise ValueError(
                    f"X_val has {val_features.shape[1]} features, X has {features.shape[1]}"
                )

        self.n_features_in_ = features.shape[1]
        self.hidden_sizes_ = self._resolved_hidden_sizes()
        train_targets = torch.from_numpy(self._fit_targets(targets))
        self.scaler_ = Standardizer(relative_floor=self.relative_std_floor).fit(features)
        train_inputs = torch.from_numpy(self.scaler_.transform(features))
        metric, higher_is_better = validation_metric(self._kind)
        val_truth = None if val_targets is None else self._encode_targets(val_targets)
        val_inputs = (
            None if val_features is None else torch.from_numpy(self.scaler_.transform(val_features))
        )

        with torch.random.fork_rng(devices=[]):
            # Seeds init and dropout; fork_rng puts the global generator back afterwards.
            torch.default_generator.manual_seed(self.seed)
            self._train(
                train_inputs, train_targets, val_inputs, val_truth, metric, higher_is_better
            )
        return self

    def _train(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        val_inputs: torch.Tensor | None,
        val_truth: np.ndarray | None,
        metric: Any,
        higher_is_better: bool,
    ) -> None:
        # -- model, optimiser, schedule ----------------------------------------------------
        model = build_mlp(inputs.shape[1], self.hidden_sizes_, targets.shape[1], self.dropout)
        optimiser = torch.optim.Adam(
            model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        has_val = val_inputs is not None and val_truth is not None
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimiser,
            mode="max" if has_val and higher_is_better else "min",
            factor=self.lr_factor,
            patience=self.lr_patience,
            min_lr=self.min_learning_rate,
        )
        loss_fn = self._loss()
        shuffle = torch.Generator().manual_seed(self.seed)
        self.model_ = model

        # -- epochs ------------------------------------------------------------------------
        sign = 1.0 if higher_is_better else -1.0
        best_score, best_state, stale = -np.inf, None, 0
        self.history_: list[dict[str, float | int | None]] = []
        self.best_epoch_, self.best_score_, self.stopped_early_ = 0, None, False
        progress = tqdm(range(1, self.max_epochs + 1), desc="head", disable=not self.verbose)
        for epoch in progress:
            model.train()
            order = torch.randperm(inputs.shape[0], generator=shuffle)
            total_loss = 0.0
            for start in range(0, inputs.shape[0], self.batch_size):
                batch = order[start : start + self.batch_size]
                optimiser.zero_grad(set_to_none=True)
                loss = loss_fn(model(inputs[batch]), targets[batch])
                loss.backward()
                optimiser.step()
                total_loss += float(loss.detach()) * batch.numel()
            train_loss = total_loss / inputs.shape[0]
            if not np.isfinite(train_loss):
                raise ValueError(
                    f"training diverged at epoch {epoch} (loss {train_loss}); "
                    f"lower learning_rate (now {self.learning_rate})"
                )

            val_score = None
            if has_val:
                assert val_inputs is not None and val_truth is not None
                val_score = float(metric(val_truth, self._decode(self._outputs(val_inputs))))
            self.history_.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_score": val_score,
                    "learning_rate": optimiser.param_groups[0]["lr"],
                }
            )
            logger.debug("epoch %d: train loss %.4f, val %s", epoch, train_loss, val_score)
            scheduler.step(val_score if val_score is not None else train_loss)
            if val_score is None:
                self.best_epoch_ = epoch
                continue
            if sign * val_score > best_score + self.min_delta:
                best_score, stale = sign * val_score, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                self.best_epoch_, self.best_score_ = epoch, val_score
            else:
                stale += 1
                if stale >= self.patience:
                    self.stopped_early_ = True
                    break
            progress.set_postfix(val=f"{val_score:.4f}", best=f"{sign * best_score:.4f}")

        if best_state is not None:
            model.load_state_dict(best_state)  # restore the best epoch's weights
        model.eval()
        self.n_epochs_ = len(self.history_)

    # -- prediction --------------------------------------------------------------------------

    def _outputs(self, inputs: torch.Tensor) -> np.ndarray:
        """Raw network outputs in eval mode (dropout off), ``(n, n_outputs)`` float64."""
        self.model_.eval()
        chunks = []
        with torch.no_grad():
            for start in range(0, inputs.shape[0], _PREDICT_BATCH):
                chunks.append(self.model_(inputs[start : start + _PREDICT_BATCH]))
        return torch.cat(chunks).double().numpy()

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        features = check_features(X, "X")
        return self._outputs(torch.from_numpy(self.scaler_.transform(features)))
