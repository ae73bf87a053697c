"""Tidy result tables of a protocol run: rows, predictions, summaries, files on disk.

``results``: one row per (model, encoder_seed, setting, train_cohort,
test_cohort, task, run, metric) with ``value``, ``n`` (test ECGs), ``n_train``,
``n_val``. ``predictions``: one row per test ECG (and label, for multi-label
tasks) with ``record_id``, ``cohort``, ``y_true`` and ``y_pred`` (age in
years, positive-class probability, or label probability), so that every
metric and test can be recomputed from the saved files.

Settings: ``in-distribution`` (composition: trained and tested on one cohort),
``source`` (OOD head on its own cohort's test split), ``out-of-distribution``
(OOD head on another cohort), ``in-cohort`` (the target cohort's own head,
the ceiling).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cape.protocols.tasks import TaskSpec
from cape.stats import mean_se_ci

logger = logging.getLogger(__name__)

KEY_COLUMNS = (
    "protocol",
    "model",
    "baseline",
    "encoder_seed",
    "setting",
    "train_cohort",
    "test_cohort",
    "task",
)
RESULT_COLUMNS = (*KEY_COLUMNS, "run", "metric", "value", "n", "n_train", "n_val")
_META = ("protocol", "model", "baseline", "setting", "train_cohort", "task")
PREDICTION_COLUMNS = (
    *_META[:3],
    "encoder_seed",
    *_META[3:],
    "cohort",
    "run",
    "record_id",
    "label",
    "y_true",
    "y_pred",
)
TABLE_FILES = {
    "results": "results.parquet",
    "predictions": "predictions.parquet",
    "summary": "summary.parquet",
    "summary_by_seed": "summary_by_seed.parquet",
    "tests": "tests.parquet",
    "labels": "labels.parquet",
    "shift": "shift.parquet",
    "subgroups": "subgroups.parquet",
    "aggregate": "aggregate.parquet",
}
CSV_TABLES = (
    "results",
    "summary",
    "summary_by_seed",
    "tests",
    "labels",
    "shift",
    "subgroups",
    "aggregate",
)
# Tables added after the first release: a results directory without them still reads.
OPTIONAL_TABLES = ("aggregate",)
CONFIG_FILE = "config.json"


class Collector:
    """Accumulates result rows and predictions while a protocol runs.

    Args:
        protocol: protocol name written into every row.
        record_ids: ``(n,)`` record ids of the aligned index rows.
        cohorts: ``(n,)`` cohorts of the aligned index rows.
    """

    def __init__(self, protocol: str, record_ids: np.ndarray, cohorts: np.ndarray) -> None:
        self.protocol = protocol
        self.record_ids = np.asarray(record_ids).astype(str)
        self.cohorts = np.asarray(cohorts).astype(str)
        self.rows: list[dict[str, Any]] = []
        self._chunks: list[
            tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray, np.ndarray]
        ] = []

    def add(
        self,
        *,
        model: str,
        baseline: str,
        encoder_seed: int,
        setting: str,
        train_cohort: str,
        test_cohort: str,
        task: TaskSpec,
        run: int,
        positions: np.ndarray,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        label_names: Sequence[str],
        n_train: int,
        n_val: int,
    ) -> float:
        """Score one head's predictions, keep the row and the predictions; returns the metric."""
        value = task.score(y_true, y_pred)
        meta = {
            "protocol": self.protocol,
            "model": model,
            "baseline": baseline,
            "encoder_seed": int(encoder_seed),
            "setting": setting,
            "train_cohort": train_cohort,
            "test_cohort": test_cohort,
            "task": task.name,
        }
        self.rows.append(
            {
                **meta,
                "run": int(run),
                "metric": task.metric,
                "value": value,
                "n": len(positions),
                "n_train": int(n_train),
                "n_val": int(n_val),
            }
        )
        true = np.asarray(y_true, dtype=np.float64)
        pred = np.asarray(y_pred, dtype=np.float64)
        if true.ndim == 2:  # multi-label: one row per (ECG, label)
            k = true.shape[1]
            rows = np.repeat(np.asarray(positions), k)
            labels = np.tile(np.arange(k), len(positions))
            names = np.asarray(label_names, dtype=object)[labels]
            true, pred = true.reshape(-1), pred.reshape(-1)
        else:
            rows = np.asarray(positions)
            names = np.full(len(positions), "", dtype=object)
        self._chunks.append(({**meta, "run": int(run)}, rows, names, true, pred))
        return value

    def results(self) -> pd.DataFrame:
        """The tidy results table."""
        return pd.DataFrame(self.rows, columns=list(RESULT_COLUMNS))

    def predictions(self) -> pd.DataFrame:
        """The predictions table (categorical string columns keep it small)."""
        if not self._chunks:
            return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
        lengths = np.array([len(chunk[1]) for chunk in self._chunks])
        columns: dict[str, Any] = {}
        for name in ("protocol", "model", "baseline", "setting", "train_cohort", "task"):
            values = [chunk[0][name] for chunk in self._chunks]
            categories, codes = np.unique(np.asarray(values, dtype=object), return_inverse=True)
            columns[name] = pd.Categorical.from_codes(np.repeat(codes, lengths), categories)
        for name in ("encoder_seed", "run"):
            columns[name] = np.repeat([chunk[0][name] for chunk in self._chunks], lengths)
        rows = np.concatenate([chunk[1] for chunk in self._chunks]).astype(np.int64)
        columns["cohort"] = pd.Categorical(self.cohorts[rows])
        columns["record_id"] = self.record_ids[rows]
        columns["label"] = pd.Categorical(np.concatenate([chunk[2] for chunk in self._chunks]))
        columns["y_true"] = np.concatenate([chunk[3] for chunk in self._chunks])
        columns["y_pred"] = np.concatenate([chunk[4] for chunk in self._chunks])
        return pd.DataFrame(columns)[list(PREDICTION_COLUMNS)]


def _interval(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"mean": np.nan, "se": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    ci = mean_se_ci(finite)
    return {"mean": ci["mean"], "se": ci["se"], "ci_low": ci["low"], "ci_high": ci["high"]}


def summarise(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summaries across runs (per encoder seed) and across encoder seeds (per model).

    ``summary_by_seed``: per encoder seed, ``n_runs`` (finite values),
    ``n_failed`` (undefined metrics), mean, SE and 95% t-interval over runs,
    median test ``n``.

    ``summary``: per model, ``n_encoder_seeds``, ``n_values`` and mean, SE and
    95% t-interval over all (encoder seed, run) values — this treats seeds and
    runs alike, so read it with the spread of the per-seed means beside it:
    ``seed_median``, ``seed_q25``, ``seed_q75``, ``seed_min``, ``seed_max``.
    """
    keys = [*KEY_COLUMNS, "metric"]
    by_seed_rows, summary_rows = [], []
    if results.empty:
        return pd.DataFrame(columns=keys), pd.DataFrame(columns=keys)
    for key, group in results.groupby(keys, sort=True, dropna=False, observed=True):
        values = group["value"].to_numpy(dtype=np.float64)
        by_seed_rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n_runs": int(np.isfinite(values).sum()),
                "n_failed": int((~np.isfinite(values)).sum()),
                **_interval(values),
                "n": float(group["n"].median()),
            }
        )
    by_seed = pd.DataFrame(by_seed_rows)
    model_keys = [k for k in keys if k != "encoder_seed"]
    seed_means = {
        key: group["mean"].to_numpy(dtype=np.float64)
        for key, group in by_seed.groupby(model_keys, sort=True, dropna=False)
    }
    for key, group in results.groupby(model_keys, sort=True, dropna=False, observed=True):
        values = group["value"].to_numpy(dtype=np.float64)
        seeds = seed_means[key]
        seeds = seeds[np.isfinite(seeds)]
        quantiles = np.quantile(seeds, [0.0, 0.25, 0.5, 0.75, 1.0]) if seeds.size else [np.nan] * 5
        summary_rows.append(
            {
                **dict(zip(model_keys, key, strict=True)),
                "n_encoder_seeds": int(group["encoder_seed"].nunique()),
                "n_values": int(np.isfinite(values).sum()),
                "n_failed": int((~np.isfinite(values)).sum()),
                **_interval(values),
                "seed_median": quantiles[2],
                "seed_q25": quantiles[1],
                "seed_q75": quantiles[3],
                "seed_min": quantiles[0],
                "seed_max": quantiles[4],
                "n": float(group["n"].median()),
            }
        )
    return pd.DataFrame(summary_rows), by_seed


@dataclass
class ProtocolResult:
    """All tables of a protocol run, as written to and read from its output directory."""

    results: pd.DataFrame
    predictions: pd.DataFrame
    summary: pd.DataFrame
    summary_by_seed: pd.DataFrame
    tests: pd.DataFrame
    labels: pd.DataFrame
    shift: pd.DataFrame = field(default_factory=pd.DataFrame)
    subgroups: pd.DataFrame = field(default_factory=pd.DataFrame)
    aggregate: pd.DataFrame = field(default_factory=pd.DataFrame)
    config: dict[str, Any] = field(default_factory=dict)


def write_results(result: ProtocolResult, out: str | Path) -> Path:
    """Write every table as Parquet (small ones also as csv) and the run config as JSON."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, file_name in TABLE_FILES.items():
        table: pd.DataFrame = getattr(result, name)
        table.reset_index(drop=True).to_parquet(out / file_name, index=False)
        if name in CSV_TABLES:
            table.to_csv(out / file_name.replace(".parquet", ".csv"), index=False)
    (out / CONFIG_FILE).write_text(json.dumps(result.config, indent=2, default=str))
    logger.info("results written to %s", out)
    return out


def read_results(out: str | Path) -> ProtocolResult:
    """Read a directory written by :func:`write_results`.

    Raises:
        FileNotFoundError: a table (other than the later-added ``aggregate``) or the
            config is missing.
    """
    out = Path(out)
    tables = {
        name: pd.read_parquet(out / file_name)
        if name not in OPTIONAL_TABLES or (out / file_name).is_file()
        else pd.DataFrame()
        for name, file_name in TABLE_FILES.items()
    }
    config = json.loads((out / CONFIG_FILE).read_text())
    return ProtocolResult(**tables, config=config)
