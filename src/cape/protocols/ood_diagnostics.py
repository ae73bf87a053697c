"""Diagnostics beside the OOD results: feature shift per model, subgroup metrics per head."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cape.diagnostics import age_bins, feature_shift, subgroup_metrics
from cape.protocols.featuresets import FeatureSet
from cape.protocols.tasks import TASKS

SUBGROUP_COLUMNS = ("sex", "age_bin", "ethnicity", "device")
_HEAD_KEYS = [
    "model",
    "baseline",
    "encoder_seed",
    "setting",
    "train_cohort",
    "cohort",
    "task",
    "run",
]


def shift_table(
    feature_sets: Sequence[FeatureSet],
    index: pd.DataFrame,
    train_cohort: str,
    targets: Sequence[str],
    threshold_sd: float = 5.0,
    target_splits: Mapping[str, Sequence[str] | None] | None = None,
    relative_std_floor: float = 0.0,
) -> pd.DataFrame:
    """Feature shift of each target cohort from the training cohort, per model and encoder seed.

    The training side is every ECG of the training cohort's ``train`` split,
    each target side every ECG of that cohort's pool (``target_splits``: the
    splits the target ECGs are drawn from, None for the whole cohort; default
    the test split), standardised as the heads do (``relative_std_floor``, 0:
    plain z-scoring). Columns: ``model``, ``baseline``,
    ``encoder_seed``, ``train_cohort`` and the summary columns of
    :func:`cape.diagnostics.feature_shift` (``target_cohort``,
    ``max_abs_shift``, ``n_beyond_threshold``, ...).
    """
    cohort = index["cohort"].astype(str).to_numpy()
    split = index["split"].astype(str).to_numpy()
    train_rows = np.flatnonzero((cohort == train_cohort) & (split == "train"))
    pools: dict[str, Sequence[str] | None] = {t: ("test",) for t in targets}
    pools.update(target_splits or {})
    target_rows = {}
    for target in targets:
        in_pool = cohort == target
        splits = pools[target]
        if splits is not None:
            in_pool &= np.isin(split, list(splits))
        target_rows[target] = np.flatnonzero(in_pool)
    target_rows = {t: rows for t, rows in target_rows.items() if rows.size}
    if train_rows.size == 0 or not target_rows:
        return pd.DataFrame()
    tables = []
    for feature_set in feature_sets:
        features = feature_set.features
        result = feature_shift(
            features[train_rows],
            {t: features[rows] for t, rows in target_rows.items()},
            threshold_sd=threshold_sd,
            relative_std_floor=relative_std_floor,
        )
        summary = result.summary
        summary.insert(0, "train_cohort", train_cohort)
        summary.insert(0, "encoder_seed", feature_set.encoder_seed)
        summary.insert(0, "baseline", feature_set.baseline)
        summary.insert(0, "model", feature_set.model)
        tables.append(summary)
    return pd.concat(tables, ignore_index=True)


def _subgroup_frame(index: pd.DataFrame) -> pd.DataFrame:
    """Subgroup variables per index row (columns with no value at all are left out)."""
    topcoded = bool(
        index.get("age_topcoded", pd.Series(dtype=bool)).fillna(False).astype(bool).any()
    )
    age = pd.to_numeric(index["age"], errors="coerce") if "age" in index else None
    frame = pd.DataFrame(index=index.index)
    for column in SUBGROUP_COLUMNS:
        if column == "age_bin":
            if age is not None and age.notna().any():
                frame[column] = age_bins(age.to_numpy(), 10, top=90.0 if topcoded else None)
        elif column in index and index[column].notna().any():
            frame[column] = index[column].astype(object).where(index[column].notna(), None)
    return frame


def subgroup_table(
    predictions: pd.DataFrame, index: pd.DataFrame, progress: bool = False
) -> pd.DataFrame:
    """The task metric per sex, 10-year age bin, ethnicity and device, for every head.

    Args:
        predictions: the predictions table of a protocol run.
        index: the aligned features index (gives each ECG's subgroup).
        progress: progress bar over heads.

    Returns:
        One row per (head, subgroup variable, group): the head's keys
        (``model`` ... ``run``, with ``test_cohort`` for the ECGs' cohort),
        ``metric``, ``variable``, ``group``, ``n``, ``value``, ``note`` (why a
        value is NaN, e.g. one class). Top-coded ages share the bin ``90+``.

    Raises:
        ValueError: predictions of ECGs that are not in ``index``.
    """
    if predictions.empty:
        return pd.DataFrame()
    groups = _subgroup_frame(index)
    index_keys = pd.Index(index["cohort"].astype(str) + "\x1f" + index["record_id"].astype(str))
    rows = index_keys.get_indexer(
        predictions["cohort"].astype(str) + "\x1f" + predictions["record_id"].astype(str)
    )
    if (rows < 0).any():
        raise ValueError(f"{int((rows < 0).sum())} predictions are of ECGs not in the index")
    y_true = predictions["y_true"].to_numpy(dtype=np.float64)
    y_pred = predictions["y_pred"].to_numpy(dtype=np.float64)
    labels = predictions["label"].astype(str).to_numpy()
    tables, keys = [], []
    heads = predictions.groupby(_HEAD_KEYS, observed=True, sort=True).indices
    for key, positions in tqdm(heads.items(), desc="subgroup metrics", disable=not progress):
        task = TASKS[str(key[_HEAD_KEYS.index("task")])]
        if task.kind == "multilabel":
            # One row per (ECG, label): order by ECG then label and fold into (n, k).
            positions = positions[np.lexsort((labels[positions], rows[positions]))]
            k = np.unique(labels[positions]).size
            true, pred = y_true[positions].reshape(-1, k), y_pred[positions].reshape(-1, k)
            positions = positions[::k]
        else:
            true, pred = y_true[positions], y_pred[positions]
        table = subgroup_metrics(
            true, pred, task.metric_fn, groups.iloc[rows[positions]].reset_index(drop=True)
        )
        table.insert(0, "metric", task.metric)
        tables.append(table)
        keys.append(key)
    result = pd.concat(tables, ignore_index=True)
    lengths = [len(table) for table in tables]
    for position, name in enumerate(_HEAD_KEYS):
        column = "test_cohort" if name == "cohort" else name
        result.insert(position, column, np.repeat([key[position] for key in keys], lengths))
    return result
