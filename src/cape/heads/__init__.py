"""Prediction heads on precomputed features (scikit-learn style estimators, no I/O).

- :class:`MLPRegressorHead`, :class:`MLPClassifierHead`, :class:`MultiLabelHead`:
  the paper's two-hidden-layer MLPs with early stopping (:mod:`cape.heads.mlp`).
- :class:`LinearProbe`: ridge / logistic regression (:mod:`cape.heads.linear`).
- :func:`make_head`, :func:`grid_search_hidden_sizes` (:mod:`cape.heads.factory`).
- :class:`Standardizer`, :func:`floored_std`: train-only standardisation with a
  std floor (:mod:`cape.heads.scaling`).
"""

from cape.heads.base import TASK_KINDS, TaskKind, validation_metric
from cape.heads.factory import (
    TASK_ALIASES,
    GridSearchResult,
    grid_search_hidden_sizes,
    make_head,
    resolve_task,
)
from cape.heads.linear import LinearProbe
from cape.heads.mlp import MLPClassifierHead, MLPRegressorHead, MultiLabelHead
from cape.heads.mlp_base import MLPHeadBase
from cape.heads.scaling import Standardizer, floored_std

__all__ = [
    "TASK_ALIASES",
    "TASK_KINDS",
    "GridSearchResult",
    "LinearProbe",
    "MLPClassifierHead",
    "MLPHeadBase",
    "MLPRegressorHead",
    "MultiLabelHead",
    "Standardizer",
    "TaskKind",
    "floored_std",
    "grid_search_hidden_sizes",
    "make_head",
    "resolve_task",
    "validation_metric",
]
