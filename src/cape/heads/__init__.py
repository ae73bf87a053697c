"""Prediction heads on precomputed features (scikit-learn style estimators, no I/O).

- :class:`MLPRegressorHead`, :class:`MLPClassifierHead`, :class:`MultiLabelHead`:
  the paper's two-hidden-layer MLPs with early stopping (:mod:`cape.heads.mlp`).
- :class:`LinearProbe`: ridge / logistic regression (:mod:`cape.heads.linear`).
- :func:`make_head`, :func:`grid_search_hidden_sizes` (:mod:`cape.heads.factory`).
- :class:`Standardizer`, :func:`floored_std`: train-only standardisation, plain
  z-scoring by default, a std floor optional (:mod:`cape.heads.scaling`).
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
from cape.heads.mlp import (
    MLPClassifierHead,
    MLPRegressorHead,
    MultiLabelHead,
    age_to_sigmoid_target,
    sigmoid_output_to_age,
)
from cape.heads.mlp_base import TARGET_TRANSFORMS, MLPHeadBase
from cape.heads.scaling import (
    HEAD_RELATIVE_FLOOR,
    SUGGESTED_RELATIVE_FLOOR,
    Standardizer,
    floored_std,
)

__all__ = [
    "HEAD_RELATIVE_FLOOR",
    "SUGGESTED_RELATIVE_FLOOR",
    "TARGET_TRANSFORMS",
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
    "age_to_sigmoid_target",
    "floored_std",
    "grid_search_hidden_sizes",
    "make_head",
    "resolve_task",
    "sigmoid_output_to_age",
    "validation_metric",
]
