"""Downstream tasks and their labels: age regression, sex classification, superclass multi-label.

Labels come from the features index (the manifest columns that ``cape embed``
copies). Rows whose label is unusable are excluded from that task, never
imputed, and counted per cohort:

- ``age``: NaN is missing; ages outside [0, 130] years are counted as invalid.
  PTB-XL stores ages >= 90 as 90 with ``age_topcoded`` set: they are kept as
  90 by default (the usual PTB-XL practice; the error on them is a lower
  bound) or excluded with ``topcoded="exclude"``. Either way they are counted.
- ``sex``: ``"M"`` is the positive class (y = 1, as CODE-15%'s ``is_male``),
  ``"F"`` is 0; None is missing, any other value is counted as invalid.
- ``superclass``: the PTB-XL diagnostic superclasses (NORM, MI, STTC, CD, HYP)
  as ``(n, k)`` 0/1 targets. A record without the field (a cohort with no
  diagnostic labels) is missing; a record with an empty list (only
  non-diagnostic SCP codes, or codes below the likelihood threshold) is
  counted as ``empty`` and excluded, as in the PTB-XL benchmark of
  Strodthoff et al. (2021).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from cape.errors import CapeError
from cape.heads import TaskKind
from cape.stats import UndefinedMetricError, auroc, macro_auroc, mean_absolute_error

TopcodedPolicy = Literal["keep", "exclude"]
SEX_POSITIVE = "M"
SEX_NEGATIVE = "F"
AGE_RANGE_YEARS = (0.0, 130.0)


@dataclass(frozen=True)
class TaskSpec:
    """A downstream task.

    Attributes:
        name: ``"age"``, ``"sex"`` or ``"superclass"``.
        kind: the head kind (:data:`cape.heads.TASK_KINDS`).
        metric: name of the reported metric (``"mae"``, ``"auroc"``, ``"macro_auroc"``).
        higher_is_better: direction of the metric.
        column: the index column the label comes from.
    """

    name: str
    kind: TaskKind
    metric: str
    higher_is_better: bool
    column: str

    def score(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """The task's metric; NaN when undefined (e.g. one class in the test set).

        Args:
            y_true: ``(n,)`` targets (age in years, sex 0/1) or ``(n, k)`` 0/1.
            y_pred: ``(n,)`` predictions / positive-class scores or ``(n, k)`` scores.
        """
        try:
            return self.metric_fn(y_true, y_pred)
        except UndefinedMetricError:
            return float("nan")

    @property
    def metric_fn(self) -> Callable[[np.ndarray, np.ndarray], float]:
        """The metric itself; raises :class:`cape.stats.UndefinedMetricError` when undefined."""
        functions = {"regression": mean_absolute_error, "binary": auroc, "multilabel": macro_auroc}
        return functions[self.kind]


TASKS: dict[str, TaskSpec] = {
    "age": TaskSpec("age", "regression", "mae", False, "age"),
    "sex": TaskSpec("sex", "binary", "auroc", True, "sex"),
    "superclass": TaskSpec("superclass", "multilabel", "macro_auroc", True, "superclasses"),
}


def get_task(name: str) -> TaskSpec:
    """The :class:`TaskSpec` called ``name``.

    Raises:
        CapeError: on an unknown task.
    """
    if name not in TASKS:
        raise CapeError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name]


@dataclass
class TaskLabels:
    """Labels of one task for every row of an index.

    Attributes:
        task: the task.
        y: ``(n,)`` float64 ages, ``(n,)`` int8 sex (1 = male), or ``(n, k)``
            int8 superclasses; values of unlabelled rows are meaningless.
        labelled: ``(n,)`` bool, rows with a usable label.
        label_names: ``k`` superclass names (multilabel), ``("age",)`` or ``("M",)``.
        counts: one row per cohort: ``cohort``, ``task``, ``n_ecgs``,
            ``n_labelled``, ``n_missing``, ``n_invalid``, ``n_empty``,
            ``n_topcoded`` (kept or not), ``n_excluded`` (all unusable rows).
    """

    task: TaskSpec
    y: np.ndarray
    labelled: np.ndarray
    label_names: tuple[str, ...]
    counts: pd.DataFrame


def _is_sequence(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def _age_labels(index: pd.DataFrame, topcoded: TopcodedPolicy) -> dict[str, Any]:
    if "age" not in index:
        age = np.full(len(index), np.nan)
    else:
        age = pd.to_numeric(index["age"], errors="coerce").to_numpy(dtype=np.float64)
    flags = index["age_topcoded"] if "age_topcoded" in index else pd.Series(False, index.index)
    top = flags.fillna(False).astype(bool).to_numpy()
    missing = ~np.isfinite(age)
    low, high = AGE_RANGE_YEARS
    invalid = ~missing & ((age < low) | (age > high))
    labelled = ~missing & ~invalid
    if topcoded == "exclude":
        labelled &= ~top
    return {
        "y": age,
        "labelled": labelled,
        "missing": missing,
        "invalid": invalid,
        "topcoded": top & ~missing,
        "names": ("age",),
    }


def _sex_labels(index: pd.DataFrame) -> dict[str, Any]:
    values = index["sex"] if "sex" in index else pd.Series(None, index.index, dtype=object)
    missing = values.isna().to_numpy()
    text = values.astype(str).to_numpy()
    known = np.isin(text, [SEX_POSITIVE, SEX_NEGATIVE]) & ~missing
    return {
        "y": (text == SEX_POSITIVE).astype(np.int8),
        "labelled": known,
        "missing": missing,
        "invalid": ~missing & ~known,
        "names": (SEX_POSITIVE,),
    }


def _superclass_labels(index: pd.DataFrame, label_names: tuple[str, ...] | None) -> dict[str, Any]:
    column = "superclasses"
    values: list[Any] = index[column].tolist() if column in index else [None] * len(index)
    present = np.fromiter((_is_sequence(v) for v in values), dtype=np.bool_, count=len(values))
    empty = np.fromiter(
        (_is_sequence(v) and len(v) == 0 for v in values), dtype=np.bool_, count=len(values)
    )
    if label_names is None:
        label_names = tuple(sorted({str(c) for v in values if _is_sequence(v) for c in v}))
    position = {name: k for k, name in enumerate(label_names)}
    y = np.zeros((len(values), len(label_names)), dtype=np.int8)
    for row, value in enumerate(values):
        if _is_sequence(value):
            for code in value:
                if str(code) in position:
                    y[row, position[str(code)]] = 1
    return {
        "y": y,
        "labelled": present & ~empty,
        "missing": ~present,
        "invalid": np.zeros(len(values), dtype=bool),
        "empty": empty,
        "names": label_names,
    }


def extract_labels(
    index: pd.DataFrame,
    task: str,
    topcoded: TopcodedPolicy = "keep",
    label_names: tuple[str, ...] | None = None,
) -> TaskLabels:
    """Labels of ``task`` for every row of a features index, with exclusion counts per cohort.

    Args:
        index: features index (``cohort`` plus the label columns).
        task: ``"age"``, ``"sex"`` or ``"superclass"``.
        topcoded: keep top-coded ages (as stored, e.g. 90) or exclude them.
        label_names: superclass names to use as columns (default: the sorted
            union of superclasses in ``index``).

    Raises:
        CapeError: unknown task or top-coding policy.
    """
    spec = get_task(task)
    if topcoded not in ("keep", "exclude"):
        raise CapeError(f"topcoded must be 'keep' or 'exclude', got {topcoded!r}")
    if spec.name == "age":
        parts = _age_labels(index, topcoded)
    elif spec.name == "sex":
        parts = _sex_labels(index)
    else:
        parts = _superclass_labels(index, label_names)
    cohorts = index["cohort"].astype(str).to_numpy()
    zeros = np.zeros(len(index), dtype=bool)
    frame = pd.DataFrame(
        {
            "cohort": cohorts,
            "labelled": parts["labelled"],
            "missing": parts["missing"],
            "invalid": parts["invalid"],
            "empty": parts.get("empty", zeros),
            "topcoded": parts.get("topcoded", zeros),
        }
    )
    grouped = frame.groupby("cohort", sort=True)
    counts = pd.DataFrame(
        {
            "n_ecgs": grouped.size(),
            "n_labelled": grouped["labelled"].sum(),
            "n_missing": grouped["missing"].sum(),
            "n_invalid": grouped["invalid"].sum(),
            "n_empty": grouped["empty"].sum(),
            "n_topcoded": grouped["topcoded"].sum(),
        }
    ).reset_index()
    counts.insert(1, "task", spec.name)
    counts["n_excluded"] = counts["n_ecgs"] - counts["n_labelled"]
    counts = counts.astype({c: "int64" for c in counts.columns if c.startswith("n_")})
    return TaskLabels(
        task=spec,
        y=parts["y"],
        labelled=np.asarray(parts["labelled"], dtype=bool),
        label_names=tuple(parts["names"]),
        counts=counts,
    )
