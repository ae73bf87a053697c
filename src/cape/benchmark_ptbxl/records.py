"""A PTB-XL cohort's records as the benchmark sees them: SCP codes, and label-set splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cape.benchmark_ptbxl.scoring import scorable_columns
from cape.errors import CapeError
from cape.protocols.tasks import TaskSpec

CODES_COLUMN = "diagnoses"  # the keys of scp_codes, as the PTB-XL reader stores them


def record_codes(index: pd.DataFrame, source: str = "features index") -> list[list[str]]:
    """Per row, the SCP codes (keys of ``scp_codes``) from the index's ``diagnoses`` column.

    Raises:
        CapeError: the column is missing.
    """
    if CODES_COLUMN not in index:
        raise CapeError(
            f"{source} has no {CODES_COLUMN!r} column (the SCP codes); embed a store "
            "ingested with the ptbxl reader"
        )
    codes = []
    for value in index[CODES_COLUMN].tolist():
        if isinstance(value, list | tuple | np.ndarray):
            codes.append([str(code) for code in value])
        else:
            codes.append([])
    return codes


def label_set_task(label_set: str) -> TaskSpec:
    return TaskSpec(f"ptbxl-{label_set}", "multilabel", "macro_auroc", True, CODES_COLUMN)


# A label set's predictions: (model, baseline, encoder_seed, (n_test, k) scores) per model.
Entry = tuple[str, str, int, np.ndarray]


@dataclass
class Split:
    """One label set's records in one cohort, split by fold.

    Attributes:
        label_set: the label set.
        classes: its ``k`` classes.
        positions: ``train``/``val``/``test`` -> row positions in the full index.
        y: ``train``/``val``/``test`` -> ``(n, k)`` int8 targets.
        n_dropped: records of the cohort without a label of the set.
    """

    label_set: str
    classes: tuple[str, ...]
    positions: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    n_dropped: int

    @property
    def task(self) -> TaskSpec:
        return label_set_task(self.label_set)


def unusable(
    label_set: str,
    n_labelled: int,
    part: dict[str, np.ndarray],
    y_val: np.ndarray,
    needs_validation: bool = True,
) -> str | None:
    """Why a label set cannot be run (None if it can): no labelled records in a fold, or
    no label with both classes in fold 9, which chooses C / stops the MLP."""
    empty = [role for role, rows in part.items() if rows.size == 0]
    if n_labelled == 0:
        return f"label set {label_set!r} skipped: no record has a label in it"
    if empty:
        return (
            f"label set {label_set!r} skipped: no labelled records in the "
            f"{'/'.join(empty)} fold(s) ({n_labelled} labelled records in all)"
        )
    if needs_validation and scorable_columns(y_val).size == 0:
        return (
            f"label set {label_set!r} skipped: no label has both classes in fold 9 "
            f"({part['val'].size} records), so the head cannot be validated"
        )
    return None
