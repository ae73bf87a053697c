"""The report's fine-tuning section: fine-tuned vs from-scratch vs mean predictor.

Reads the protocol tables that ``cape finetune`` writes (protocol ``finetune``,
pooled over runs by :func:`cape.report.collect.pool_finetune`); nothing is
trained. Per task, one row per (training cohort, test cohort, training share,
model) with the number of runs, test ECGs and the metric with a 95% interval:

- several runs (seeds): the Student-t interval over the runs' values
  (:func:`cape.stats.mean_se_ci`);
- one run: a percentile bootstrap over its saved test predictions
  (:func:`cape.stats.bootstrap_ci`), the resamples drawn once per test cohort
  and shared by every model, so the intervals are paired.

Rows with fewer than ``report.min_cell_n`` test ECGs are suppressed, as the
subgroup rows are.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cape.protocols.featuresets import MEAN_PREDICTOR
from cape.protocols.results import ProtocolResult
from cape.report.context import ReportContext
from cape.report.document import Paragraph, Section, TableBlock
from cape.report.tables import DIGITS, METRIC_NAMES, fmt
from cape.stats import (
    UndefinedMetricError,
    auroc,
    bootstrap_ci,
    bootstrap_indices,
    macro_auroc,
    mean_absolute_error,
    mean_se_ci,
)

BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95
METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mae": mean_absolute_error,
    "auroc": auroc,
    "macro_auroc": macro_auroc,
}
LOWER_IS_BETTER = {"mae"}
_CONDITION = ["train_cohort", "test_cohort", "setting", "train_fraction"]


@dataclass
class FinetuneRows:
    """One task's table and what it left out.

    Attributes:
        table: display strings, index (trained on, test cohort, setting, share, model).
        suppressed: (condition, model) rows with fewer than ``min_n`` test ECGs.
        min_n: the threshold used.
    """

    table: pd.DataFrame
    suppressed: int
    min_n: int


def _model_rank(model: str, baseline: str) -> tuple[int, str]:
    """Fine-tuned models first, then from-scratch runs, the mean predictor last."""
    if model == MEAN_PREDICTOR:
        return (2, model)
    return (1 if baseline == "scratch" else 0, model)


def _arrays(
    predictions: pd.DataFrame, metric: str, order: list[str]
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(y_true, y_pred)`` of one run's test predictions in ``order`` of record ids."""
    if metric == "macro_auroc":
        true = predictions.pivot_table(index="record_id", columns="label", values="y_true")
        pred = predictions.pivot_table(index="record_id", columns="label", values="y_pred")
        true, pred = true.reindex(order), pred.reindex(order)[true.columns]
    else:
        indexed = predictions.drop_duplicates("record_id").set_index("record_id").reindex(order)
        true, pred = indexed["y_true"], indexed["y_pred"]
    y_true, y_pred = true.to_numpy(dtype=np.float64), pred.to_numpy(dtype=np.float64)
    if np.isnan(y_true).any() or np.isnan(y_pred).any():
        return None
    return y_true, y_pred


def _bootstrap(
    result: ProtocolResult, row: pd.Series, indices: dict[str, tuple[list[str], np.ndarray]]
) -> tuple[float, float] | None:
    """Bootstrap interval of one run's metric from its saved predictions (None: cannot)."""
    predictions = result.predictions
    function = METRIC_FUNCTIONS.get(str(row["metric"]))
    if predictions.empty or function is None:
        return None
    mine = predictions[
        (predictions["model"] == row["model"])
        & (predictions["run"] == row["run"])
        & (predictions["encoder_seed"] == row["encoder_seed"])
        & (predictions["train_cohort"] == row["train_cohort"])
        & (predictions["task"] == row["task"])
        & (predictions["cohort"] == row["test_cohort"])
        & (predictions["train_fraction"] == row["train_fraction"])
    ]
    if mine.empty:
        return None
    cohort = str(row["test_cohort"])
    if cohort not in indices:
        # The cohort's test ECGs in one fixed order, so every model meets the same resamples.
        order = sorted(mine["record_id"].astype(str).unique())
        seed = zlib.crc32(f"report-finetune|{cohort}".encode())
        indices[cohort] = (order, bootstrap_indices(len(order), BOOTSTRAP_RESAMPLES, seed))
    order, drawn = indices[cohort]
    arrays = _arrays(mine.assign(record_id=mine["record_id"].astype(str)), row["metric"], order)
    if arrays is None:
        return None
    try:
        ci = bootstrap_ci(function, arrays[0], arrays[1], drawn, CONFIDENCE)
    except (UndefinedMetricError, ValueError):
        return None
    return ci["low"], ci["high"]


def finetune_table(result: ProtocolResult, task: str, min_n: int) -> FinetuneRows:
    """Fine-tuned vs from-scratch vs mean predictor for one task (see the module docstring)."""
    results = result.results[result.results["task"] == task]
    if results.empty:
        return FinetuneRows(pd.DataFrame(), 0, min_n)
    metric = str(results["metric"].iloc[0])
    digits = DIGITS.get(metric, 3)
    indices: dict[str, tuple[list[str], np.ndarray]] = {}
    rows, suppressed = [], 0
    for key, group in results.groupby([*_CONDITION, "model"], sort=True):
        train_cohort, test_cohort, setting, fraction, model = key
        n = float(group["n"].median())
        if not n >= min_n:
            suppressed += 1
            continue
        values = group["value"].to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        low = high = np.nan
        mean = np.nan
        over = "–"
        if finite.size >= 2:
            ci = mean_se_ci(finite, CONFIDENCE)
            mean, low, high, over = ci["mean"], ci["low"], ci["high"], "runs (t)"
        elif finite.size == 1:
            mean = float(finite[0])
            run = group[np.isfinite(values)].iloc[0]
            interval = _bootstrap(result, run, indices)
            if interval is not None:
                (low, high), over = interval, "test ECGs (bootstrap)"
        value = fmt(mean, digits)
        if np.isfinite(low) and np.isfinite(high):
            value += f" [{fmt(low, digits)}–{fmt(high, digits)}]"
        failed = int(values.size - finite.size)
        rows.append(
            {
                "trained on": str(train_cohort),
                "test cohort": str(test_cohort),
                "setting": str(setting),
                "training share": f"{float(fraction) * 100:g}%",
                "model": str(model),
                "_rank": _model_rank(str(model), str(group["baseline"].iloc[0])),
                "runs": f"{finite.size}" + (f" ({failed} failed)" if failed else ""),
                "test ECGs": f"{n:.0f}",
                "training ECGs": f"{float(group['n_train'].median()):.0f}",
                f"{METRIC_NAMES.get(metric, metric)} [95% CI]": value,
                "interval over": over,
            }
        )
    if not rows:
        return FinetuneRows(pd.DataFrame(), suppressed, min_n)
    index = ["trained on", "test cohort", "setting", "training share", "model"]
    frame = pd.DataFrame(rows)
    frame = frame.sort_values([*index[:4], "_rank"], kind="stable").drop(columns="_rank")
    return FinetuneRows(frame.set_index(index), suppressed, min_n)


def runs_table(runs: list[dict[str, object]]) -> pd.DataFrame:
    """One row per fine-tuning run folder: what trained, and when early stopping kept it."""
    rows = []
    for run in sorted(runs, key=lambda r: (str(r["task"]), str(r["model"]), str(r["folder"]))):
        best, ran, epochs = run["best_epoch"], run["epochs_run"], run["epochs"]
        # A best epoch at the run's last allowed epoch: the metric may still have been improving.
        at_end = best is not None and epochs is not None and best == ran == epochs
        rows.append(
            {
                "folder": str(run["folder"]),
                "model": str(run["model"]),
                "weights from": "random (scratch)"
                if run["baseline"] == "scratch"
                else "pretrained",
                "task": str(run["task"]),
                "trained on": str(run["train_cohort"]),
                "seed": str(run["seed"]),
                "training share": f"{float(str(run['train_fraction'])) * 100:g}%",
                "best epoch / epochs run": (
                    f"{best} / {ran}" + (" (last epoch)" if at_end else "")
                    if best is not None and ran is not None
                    else "–"
                ),
            }
        )
    return pd.DataFrame(rows)


def _tasks(results: pd.DataFrame) -> list[str]:
    known = [t for t in ("age", "sex", "superclass") if (results["task"] == t).any()]
    return known + sorted(set(results["task"].astype(str)) - set(known))


def finetune_section(context: ReportContext) -> Section | None:
    """Fine-tuning results (``finetune/NAME/results``); None when the run has none."""
    result = context.data.finetune
    if result is None:
        return None
    section = Section("Fine-tuning", "finetuning")
    section.add(
        Paragraph(
            "Encoder and head trained end to end (cape finetune) from the pretrained weights "
            "(fine-tuned), the same architecture and loop from random weights (baseline "
            "scratch), and the training mean / prevalence (mean predictor), scored on each "
            "test cohort's test split. In-distribution: the test cohort also trained the "
            "model. Interval: 95% Student-t interval over the runs (seeds) when there are "
            "several; with one run, a percentile bootstrap over its test ECGs "
            f"({BOOTSTRAP_RESAMPLES:,} resamples shared by all models of a test cohort)."
        )
    )
    min_n = context.settings.min_cell_n
    for task in _tasks(result.results):
        rows = finetune_table(result, task, min_n)
        metric = str(result.results.loc[result.results["task"] == task, "metric"].iloc[0])
        direction = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
        if not rows.table.empty:
            section.add(
                TableBlock(
                    rows.table,
                    f"Fine-tuning, {task} ({METRIC_NAMES.get(metric, metric)}; {direction}): "
                    "mean [95% CI]; test ECGs per run (median)",
                )
            )
        if rows.suppressed:
            section.add(
                Paragraph(
                    f"{task}: {rows.suppressed} rows with fewer than {min_n} test ECGs are "
                    "suppressed (report.min_cell_n): a metric on so few ECGs says little and "
                    "can point at few patients."
                )
            )
    runs = runs_table(context.data.finetune_runs)
    if len(runs):
        section.add(
            TableBlock(
                runs,
                "Fine-tuning runs read (config.json of each): best epoch (early stopping "
                'kept its weights) / epochs run; "last epoch": the best epoch was the last '
                "allowed one, so more epochs might still have helped",
                show_index=False,
            )
        )
    return section
