"""Build heads by task name, and an optional grid search over hidden sizes."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from cape.heads.base import TASK_KINDS, TaskKind, validation_metric
from cape.heads.linear import LinearProbe
from cape.heads.mlp import MLPClassifierHead, MLPRegressorHead, MultiLabelHead
from cape.heads.mlp_base import MLPHeadBase

logger = logging.getLogger(__name__)

# The paper's tasks map onto the three head kinds.
TASK_ALIASES: dict[str, TaskKind] = {"age": "regression", "sex": "binary"}
HEAD_KINDS = ("mlp", "linear")
_MLP_CLASSES: dict[TaskKind, type[MLPHeadBase]] = {
    "regression": MLPRegressorHead,
    "binary": MLPClassifierHead,
    "multilabel": MultiLabelHead,
}


def resolve_task(task: str) -> TaskKind:
    """``"age"`` -> ``"regression"``, ``"sex"`` -> ``"binary"``; kinds pass through.

    Raises:
        ValueError: on an unknown task.
    """
    if task in TASK_ALIASES:
        return TASK_ALIASES[task]
    for kind in TASK_KINDS:
        if task == kind:
            return kind
    raise ValueError(
        f"unknown task {task!r}; expected one of {sorted(TASK_ALIASES) + list(TASK_KINDS)}"
    )


def make_head(task: str, kind: str = "mlp", **params: Any) -> MLPHeadBase | LinearProbe:
    """A head for a task: the paper's MLP (age 256-128, sex 256-256) or a linear probe.

    Args:
        task: ``"age"``, ``"sex"``, ``"regression"``, ``"binary"`` or ``"multilabel"``.
        kind: ``"mlp"`` or ``"linear"``.
        **params: constructor parameters of the head (e.g. ``seed``, ``hidden_sizes``, ``C``).

    Raises:
        ValueError: on an unknown task or kind; TypeError on an unknown parameter.
    """
    task_kind = resolve_task(task)
    if kind == "mlp":
        return _MLP_CLASSES[task_kind](**params)
    if kind == "linear":
        return LinearProbe(task=task_kind, **params)
    raise ValueError(f"unknown head kind {kind!r}; expected one of {HEAD_KINDS}")


@dataclass
class GridSearchResult:
    """What :func:`grid_search_hidden_sizes` returns.

    Attributes:
        head: the fitted head with the best validation score.
        hidden_sizes: its hidden sizes.
        best_score: its validation score (MAE, AUROC or macro AUROC).
        trials: one dict per candidate: ``hidden_sizes``, ``val_score``, ``best_epoch``.
    """

    head: MLPHeadBase
    hidden_sizes: tuple[int, ...]
    best_score: float
    trials: list[dict[str, Any]] = field(default_factory=list)


def grid_search_hidden_sizes(
    task: str,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    widths: Sequence[int] = (32, 64, 128, 256),
    n_layers: int = 2,
    verbose: bool = False,
    **params: Any,
) -> GridSearchResult:
    """Fit an MLP head for every combination of ``widths`` per layer; keep the best on validation.

    With the defaults that is 4 × 4 = 16 fits. The validation set both stops
    each fit early and selects among them, so report the chosen head on a
    separate test set.

    Args:
        task: as in :func:`make_head`.
        X: ``(n, d)`` training features.
        y: training targets.
        X_val: ``(n_val, d)`` validation features.
        y_val: validation targets.
        widths: candidate widths of each hidden layer.
        n_layers: number of hidden layers.
        verbose: progress bar over candidates.
        **params: other MLP parameters (``seed``, ``max_epochs``, ...), shared by all fits.

    Raises:
        ValueError: on empty ``widths``, ``n_layers < 1``, or ``hidden_sizes`` in ``params``.
    """
    if not widths or n_layers < 1:
        raise ValueError(f"need at least one width and n_layers >= 1, got {widths}, {n_layers}")
    if "hidden_sizes" in params:
        raise ValueError("hidden_sizes is what the grid search chooses; do not pass it")
    task_kind = resolve_task(task)
    _, higher_is_better = validation_metric(task_kind)
    candidates = list(itertools.product([int(w) for w in widths], repeat=n_layers))
    best: tuple[float, MLPHeadBase] | None = None
    trials: list[dict[str, Any]] = []
    for sizes in tqdm(candidates, desc="hidden sizes", disable=not verbose):
        head = _MLP_CLASSES[task_kind](hidden_sizes=sizes, **params)
        head.fit(X, y, X_val, y_val)
        score = float(head.best_score_)  # type: ignore[arg-type]
        trials.append({"hidden_sizes": sizes, "val_score": score, "best_epoch": head.best_epoch_})
        signed = score if higher_is_better else -score
        if best is None or signed > best[0]:
            best = (signed, head)
    assert best is not None
    chosen = best[1]
    logger.info(
        "grid search: best hidden sizes %s, val score %.4f",
        chosen.hidden_sizes_,
        chosen.best_score_,
    )
    return GridSearchResult(
        head=chosen,
        hidden_sizes=chosen.hidden_sizes_,
        best_score=float(chosen.best_score_),  # type: ignore[arg-type]
        trials=trials,
    )
