"""Scoring a model's own fold-10 predictions (e.g. an end-to-end network) with the protocol.

A predictions file (csv or Parquet) has one row per (test record, class):
``record_id``, ``label_set`` (one of the six; or ``task`` as ``ptbxl-<set>``, the
column CAPE's own ``predictions.parquet`` has), ``label`` and ``y_pred`` (a
score, higher meaning more likely). Every labelled fold-10 record of a label
set needs a score for every class of the set; rows of other records (training
folds) are ignored. The labels, folds and resamples are the benchmark's, so
the numbers sit beside CAPE's heads (same seed, same resamples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cape.benchmark_ptbxl.benchmark import (
    BenchmarkResult,
    BenchmarkSettings,
    evaluate_label_sets,
)
from cape.benchmark_ptbxl.labels import LABEL_SETS, Statements
from cape.benchmark_ptbxl.records import Entry, Split
from cape.errors import CapeError

REQUIRED_COLUMNS = ("record_id", "label", "y_pred")
TASK_PREFIX = "ptbxl-"


@dataclass
class PredictionFile:
    """One model's predictions, read and checked."""

    model: str
    path: Path
    table: pd.DataFrame

    @classmethod
    def parse(cls, text: str) -> PredictionFile:
        """Read ``MODEL=FILE``.

        Raises:
            CapeError: malformed text, unreadable file, missing columns, bad values.
        """
        model, sep, path_text = text.partition("=")
        if not sep or not model or not path_text:
            raise CapeError(f"--predictions expects MODEL=FILE, got {text!r}")
        return cls(model, Path(path_text), read_predictions(path_text))


def read_predictions(path: str | Path) -> pd.DataFrame:
    """A predictions file as ``record_id`` (str), ``label_set``, ``label`` (str), ``y_pred``.

    Raises:
        CapeError: unreadable, a required column missing, an unknown label set, a
            non-finite score or a repeated (record, label set, label).
    """
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, dtype={"record_id": str, "label": str})
    except (OSError, ValueError) as error:
        raise CapeError(f"{path}: cannot read predictions: {error}") from error
    if "label_set" not in table and "task" in table:
        table = table.assign(label_set=table["task"].astype(str).str.removeprefix(TASK_PREFIX))
    missing = [c for c in (*REQUIRED_COLUMNS, "label_set") if c not in table]
    if missing:
        raise CapeError(f"{path}: missing column(s) {missing}")
    if "model" in table and table["model"].nunique() > 1:
        raise CapeError(
            f"{path} holds predictions of {table['model'].nunique()} models; give one file "
            "per model (filter on the model column)"
        )
    table = pd.DataFrame(
        {
            "record_id": table["record_id"].astype(str),
            "label_set": table["label_set"].astype(str),
            "label": table["label"].astype(str),
            "y_pred": pd.to_numeric(table["y_pred"], errors="coerce"),
        }
    )
    unknown = sorted(set(table["label_set"]) - set(LABEL_SETS))
    if unknown:
        raise CapeError(f"{path}: unknown label set(s) {unknown}; expected {list(LABEL_SETS)}")
    if not np.isfinite(table["y_pred"].to_numpy(dtype=np.float64)).all():
        raise CapeError(f"{path}: y_pred has missing or non-finite values")
    repeated = table.duplicated(["record_id", "label_set", "label"])
    if repeated.any():
        example = table.loc[repeated, ["record_id", "label_set", "label"]].iloc[0].tolist()
        raise CapeError(f"{path}: {int(repeated.sum())} repeated rows, e.g. {example}")
    return table


def prediction_matrix(
    prediction: PredictionFile, split: Split, record_ids: np.ndarray
) -> np.ndarray:
    """``(n_test, k)`` scores of a label set's fold-10 records, in the split's order.

    Raises:
        CapeError: the file lacks the label set, a test record or a class.
    """
    rows = prediction.table[prediction.table["label_set"] == split.label_set]
    if rows.empty:
        raise CapeError(
            f"{prediction.path} has no predictions for label set {split.label_set!r}; "
            "choose the label sets it covers with --label-sets"
        )
    wide = rows.pivot(index="record_id", columns="label", values="y_pred")
    test_ids = pd.Index(record_ids[split.positions["test"]].astype(str))
    absent_records = test_ids.difference(wide.index)
    if absent_records.size:
        raise CapeError(
            f"{prediction.path}: label set {split.label_set!r} lacks {absent_records.size} of "
            f"the {test_ids.size} fold-10 records (e.g. record_id {list(absent_records[:3])})"
        )
    absent_classes = sorted(set(split.classes) - set(wide.columns))
    if absent_classes:
        raise CapeError(
            f"{prediction.path}: label set {split.label_set!r} lacks class(es) {absent_classes}"
        )
    matrix = wide.reindex(index=test_ids, columns=list(split.classes)).to_numpy(np.float64)
    if not np.isfinite(matrix).all():
        raise CapeError(
            f"{prediction.path}: label set {split.label_set!r} lacks some (record, class) scores"
        )
    return matrix


def score_predictions(
    predictions: Sequence[PredictionFile],
    index: pd.DataFrame,
    statements: Statements,
    cohort: str,
    settings: BenchmarkSettings | None = None,
    sources: Sequence[str | Path] = (),
) -> BenchmarkResult:
    """Score fold-10 predictions of several models (no heads are trained).

    Args:
        predictions: one per model.
        index: rows with ``cohort``, ``record_id``, ``diagnoses``, ``strat_fold`` (a
            store manifest or a features index).
        statements, cohort, settings, sources: as :func:`run_benchmark`.

    Raises:
        CapeError: as :func:`prediction_matrix` and :func:`evaluate_label_sets`.
    """
    settings = settings or BenchmarkSettings()
    settings.validate()
    record_ids = index["record_id"].astype(str).to_numpy()

    def lookup(split: Split) -> list[Entry]:
        return [(p.model, "", 0, prediction_matrix(p, split, record_ids)) for p in predictions]

    return evaluate_label_sets(
        index,
        statements,
        cohort,
        settings,
        lookup,
        needs_validation=False,
        sources=sources,
        inputs=[{"model": p.model, "predictions": str(p.path)} for p in predictions],
    )
