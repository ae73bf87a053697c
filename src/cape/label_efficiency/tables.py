"""The tables of a label-efficiency run, computed from the recorded cells.

- ``results``: one row per (method, fraction, seed, test cohort): ``value`` of
  the task's metric on the test ECGs with a percentile-bootstrap interval
  (``ci_low``, ``ci_high``) over those ECGs; the resamples are drawn once per
  test cohort and shared by every cell, so intervals are paired. Failed cells
  (a head that cannot be fitted, e.g. one class in a 1 % sample) keep a row
  with ``status`` and ``error`` and no value.
- ``summary``: per (method, fraction, test cohort), mean, SE and Student-t
  interval over the seeds (:func:`cape.stats.mean_se_ci`).
- ``tests``: per fraction and pair of methods, :func:`cape.protocols.paired_tests`
  -- Wilcoxon signed-rank over seeds (each seed's methods saw the same training
  patients) and, for AUROC, DeLong on the same test ECGs per seed -- with a
  ``fraction`` column.
- ``predictions``: every test prediction in the protocols' long format with
  ``fraction``, so every number here can be recomputed.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from cape.errors import CapeError
from cape.finetune.labels import Selection
from cape.label_efficiency.cells import CELL_PREDICTION_COLUMNS, MEAN_PREDICTOR, Cell, read_cell
from cape.protocols.comparisons import TEST_COLUMNS, paired_tests
from cape.stats import UndefinedMetricError, bootstrap_ci, bootstrap_indices, mean_se_ci

RESULT_COLUMNS = (
    "method",
    "fraction",
    "seed",
    "n_train_patients",
    "n_train",
    "n_val",
    "setting",
    "train_cohort",
    "test_cohort",
    "task",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "status",
    "error",
)
SUMMARY_COLUMNS = (
    "method",
    "fraction",
    "setting",
    "train_cohort",
    "test_cohort",
    "task",
    "metric",
    "n_train_patients",
    "n_seeds",
    "n_failed",
    "mean",
    "se",
    "ci_low",
    "ci_high",
    "n",
)
BOOTSTRAP_STREAM = 0x1E


def _setting(test_cohort: str, train_cohort: str) -> str:
    return "in-distribution" if test_cohort == train_cohort else "out-of-distribution"


def ordered_test_ids(selection: Selection, manifest: pd.DataFrame) -> dict[str, list[str]]:
    """Record ids of each test cohort in one fixed order (the store's)."""
    records = selection.records["test"]
    cohorts = manifest["cohort"].astype(str).to_numpy()[records]
    ids = manifest["record_id"].astype(str).to_numpy()[records]
    return {c: ids[cohorts == c].tolist() for c in selection.test_cohorts}


def cell_arrays(
    predictions: pd.DataFrame,
    cohort: str,
    order: Sequence[str],
    label_names: Sequence[str],
    multilabel: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_pred)`` of one cohort in ``order``: ``(n,)`` or ``(n, k)``.

    Raises:
        CapeError: a test ECG (or label) has no prediction.
    """
    rows = predictions[predictions["cohort"] == cohort]
    if multilabel:
        true = rows.pivot(index="record_id", columns="label", values="y_true")
        pred = rows.pivot(index="record_id", columns="label", values="y_pred")
        true = true.reindex(index=list(order), columns=list(label_names))
        pred = pred.reindex(index=list(order), columns=list(label_names))
    else:
        indexed = rows.set_index("record_id").reindex(list(order))
        true, pred = indexed["y_true"], indexed["y_pred"]
    y_true, y_pred = true.to_numpy(dtype=np.float64), pred.to_numpy(dtype=np.float64)
    if np.isnan(y_true).any() or np.isnan(y_pred).any():
        raise CapeError(f"cohort {cohort!r}: some test ECGs have no prediction in a recorded cell")
    return y_true, y_pred


def collect(
    cells: Sequence[Cell],
    root: Path,
    selection: Selection,
    manifest: pd.DataFrame,
    resamples: int,
    bootstrap_seed: int,
    confidence: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``results`` and ``predictions`` tables of the recorded ``cells``.

    Args:
        cells: the cells to read (recorded under ``root``).
        root: the run directory.
        selection: any cell's selection (the test ECGs and task are the same in all).
        manifest: the store manifest.
        resamples: bootstrap resamples per interval.
        bootstrap_seed: seed of the shared resamples.
        confidence: interval coverage.
    """
    task = selection.task
    multilabel = task.kind == "multilabel"
    train_cohort = selection.train_cohorts[0]
    order = ordered_test_ids(selection, manifest)
    indices = {
        cohort: bootstrap_indices(
            len(ids), resamples, zlib.crc32(f"{bootstrap_seed}|{cohort}".encode())
        )
        for cohort, ids in order.items()
        if ids
    }
    rows, frames = [], []
    for cell in cells:
        info, predictions = read_cell(cell, root)
        for cohort, ids in order.items():
            row = {
                "method": cell.method,
                "fraction": cell.fraction,
                "seed": cell.seed,
                "n_train_patients": info.get("n_train_patients"),
                "n_train": info.get("n_train"),
                "n_val": info.get("n_val"),
                "setting": _setting(cohort, train_cohort),
                "train_cohort": train_cohort,
                "test_cohort": cohort,
                "task": task.name,
                "metric": task.metric,
                "value": np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "n": len(ids),
                "status": info.get("status", "ok"),
                "error": info.get("error", ""),
            }
            if row["status"] == "ok":
                y_true, y_pred = cell_arrays(
                    predictions, cohort, ids, selection.label_names, multilabel
                )
                row["value"] = task.score(y_true, y_pred)
                if np.isfinite(row["value"]):
                    try:
                        ci = bootstrap_ci(
                            task.metric_fn, y_true, y_pred, indices[cohort], confidence
                        )
                        row["ci_low"], row["ci_high"] = ci["low"], ci["high"]
                    except UndefinedMetricError:
                        pass
            rows.append(row)
        if len(predictions):
            frame = predictions.copy()
            frame.insert(0, "method", cell.method)
            frame.insert(1, "fraction", cell.fraction)
            frame.insert(2, "seed", cell.seed)
            frames.append(frame)
    results = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    results = results.astype({"n_train_patients": "Int64", "n_train": "Int64", "n_val": "Int64"})
    empty = pd.DataFrame(columns=["method", "fraction", "seed", *CELL_PREDICTION_COLUMNS])
    predictions = pd.concat(frames, ignore_index=True) if frames else empty
    return results, predictions


def summarise(results: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Mean, SE and t-interval over seeds per (method, fraction, test cohort)."""
    keys = ["method", "fraction", "setting", "train_cohort", "test_cohort", "task", "metric"]
    rows = []
    for key, group in results.groupby(keys, sort=False):
        values = group["value"].to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        row = dict(zip(keys, key, strict=True))
        row["n_train_patients"] = float(group["n_train_patients"].astype(float).median())
        row["n_seeds"] = int(finite.size)
        row["n_failed"] = int(values.size - finite.size)
        if finite.size:
            ci = mean_se_ci(finite, confidence)
            row.update(mean=ci["mean"], se=ci["se"], ci_low=ci["low"], ci_high=ci["high"])
        else:
            row.update(mean=np.nan, se=np.nan, ci_low=np.nan, ci_high=np.nan)
        row["n"] = int(group["n"].median())
        rows.append(row)
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _protocol_frames(
    results: pd.DataFrame, predictions: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Our tables renamed to the protocols' (model = method, run = seed, one encoder)."""
    protocol_results = results.rename(columns={"method": "model", "seed": "run"}).assign(
        baseline="", encoder_seed=0
    )
    if predictions.empty:
        return protocol_results, predictions
    settings = results.drop_duplicates("test_cohort").set_index("test_cohort")
    protocol_predictions = predictions.rename(columns={"method": "model", "seed": "run"}).assign(
        encoder_seed=0,
        train_cohort=str(results["train_cohort"].iloc[0]),
        task=str(results["task"].iloc[0]),
        setting=lambda frame: frame["cohort"].map(settings["setting"]),
    )
    return protocol_results, protocol_predictions


def tests_table(
    results: pd.DataFrame, predictions: pd.DataFrame, methods: Sequence[str], alpha: float
) -> pd.DataFrame:
    """Paired tests between every two methods at every fraction (mean predictor left out)."""
    protocol_results, protocol_predictions = _protocol_frames(results, predictions)
    parts = []
    for fraction, group in protocol_results.groupby("fraction", sort=True):
        present = set(group.loc[group["value"].notna(), "model"])
        chosen = [m for m in methods if m in present and m != MEAN_PREDICTOR]
        fraction_predictions = (
            protocol_predictions[protocol_predictions["fraction"] == fraction]
            if not protocol_predictions.empty
            else protocol_predictions
        )
        for model_a, model_b in combinations(chosen, 2):
            table = paired_tests(group, fraction_predictions, model_a, model_b, alpha)
            if not table.empty:
                table.insert(0, "fraction", fraction)
                parts.append(table)
    if not parts:
        return pd.DataFrame(columns=["fraction", *TEST_COLUMNS])
    return pd.concat(parts, ignore_index=True)
