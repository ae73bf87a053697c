"""Report tables of the out-of-distribution protocol: Table 3, the heads' sizes, the
seed spread, the feature shift and the subgroups, cells as display strings.

Like :mod:`cape.report.tables` (whose formatting helpers these use), every function
reshapes saved results; none fits a model or reruns a test, and only aggregates leave
the module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cape.protocols.featuresets import MEAN_PREDICTOR, UNTRAINED
from cape.protocols.results import ProtocolResult
from cape.report.settings import DEFAULT_MIN_CELL_N
from cape.report.tables import DIGITS, fmt, fmt_p, mean_se, spread


def _cell(summary: pd.DataFrame, **keys: Any) -> pd.Series | None:
    mask = np.ones(len(summary), dtype=bool)
    for key, value in keys.items():
        mask &= (summary[key] == value).to_numpy()
    rows = summary[mask]
    return None if rows.empty else rows.iloc[0]


def _test_p(
    tests: pd.DataFrame, test: str, pair: Sequence[str], setting: str, cohort: str, task: str
) -> Any:
    if tests.empty:
        return None
    rows = tests[
        (tests["test"] == test)
        & (tests["scope"] == "all")
        & (tests["setting"] == setting)
        & (tests["test_cohort"] == cohort)
        & (tests["task"] == task)
        & tests["model_a"].isin(pair)
        & tests["model_b"].isin(pair)
    ]
    return None if rows.empty else rows["p_value"].iloc[0]


def ood_models(result: ProtocolResult, pair: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """``(pretrained, untrained)`` model names of an OOD result, the compared pair first."""
    summary = result.summary
    pretrained = sorted(set(summary.loc[summary["baseline"].fillna("") == "", "model"]))
    first = [m for m in (pair or ()) if m in pretrained]
    pretrained = first + [m for m in pretrained if m not in first]
    untrained = sorted(set(summary.loc[summary["baseline"] == UNTRAINED, "model"]))
    return pretrained, untrained


def ood_table(result: ProtocolResult, task: str, pair: Sequence[str] | None) -> pd.DataFrame:
    """The paper's Table 3 for one task: rows test cohorts, cells ``mean (SE)`` over all runs.

    Columns: each pretrained model and the untrained encoder (heads trained on
    the training cohort), the mean predictor, the in-cohort ceiling (each
    target cohort's own head) per pretrained model, and the random-vs-IDB
    p-values (Wilcoxon over matched runs; DeLong, median over runs, for AUROC).
    The first row is the training cohort's own test split.
    """
    summary = result.summary[result.summary["task"] == task]
    if summary.empty:
        return pd.DataFrame()
    metric = str(summary["metric"].iloc[0])
    digits = DIGITS.get(metric, 3)
    pretrained, untrained = ood_models(result, pair)
    rows = []
    order = [
        ("source", c)
        for c in sorted(summary.loc[summary["setting"] == "source", "test_cohort"].unique())
    ]
    order += [
        ("out-of-distribution", c)
        for c in sorted(
            summary.loc[summary["setting"] == "out-of-distribution", "test_cohort"].unique()
        )
    ]
    for setting, cohort in order:
        label = f"{cohort} (training cohort, own test split)" if setting == "source" else cohort
        row: dict[str, str] = {"test cohort": label}
        for model in [*pretrained, *untrained, MEAN_PREDICTOR]:
            cell = _cell(summary, model=model, setting=setting, test_cohort=cohort)
            name = f"{model} (untrained)" if model in untrained and model != UNTRAINED else model
            row[name] = "–" if cell is None else mean_se(cell["mean"], cell["se"], digits)
        for model in pretrained:
            cell = _cell(summary, model=model, setting="in-cohort", test_cohort=cohort)
            row[f"in-cohort ceiling ({model})"] = (
                "–" if cell is None else mean_se(cell["mean"], cell["se"], digits)
            )
        if pair:
            row["p Wilcoxon"] = fmt_p(
                _test_p(result.tests, "wilcoxon_signed_rank", pair, setting, cohort, task)
            )
            if metric == "auroc":
                row["p DeLong (median of runs)"] = fmt_p(
                    _test_p(result.tests, "delong_runs", pair, setting, cohort, task)
                )
        rows.append(row)
    return pd.DataFrame(rows).set_index("test cohort")


def sizes_table(config: dict[str, Any], train_cohort: str | None = None) -> pd.DataFrame:
    """ECGs per head from an OOD result's saved ``sizes``: ``train / val / test`` per task.

    The training cohort's row is its heads' sample; a target's row is its test
    ECGs (``test``) and its in-cohort ceiling's training sample (``train``,
    ``val``), marked when smaller than the training cohort's heads had.
    """
    sizes = [s for s in config.get("sizes") or [] if isinstance(s, dict) and "cohort" in s]
    if not sizes:
        return pd.DataFrame()
    source = train_cohort or config.get("train_cohort")
    reference = {
        str(s.get("task")): (s.get("train"), s.get("val")) for s in sizes if s["cohort"] == source
    }
    table: dict[str, dict[str, str]] = {}
    for entry in sizes:
        task, cohort = str(entry.get("task")), str(entry["cohort"])
        cells = [entry.get(k) for k in ("train", "val", "test")]
        text = " / ".join("–" if v is None else f"{int(v):,}" for v in cells)
        train, val = reference.get(task, (None, None))
        smaller = cohort != source and any(
            mine is not None and theirs is not None and mine < theirs
            for mine, theirs in ((entry.get("train"), train), (entry.get("val"), val))
        )
        table.setdefault(cohort, {})[f"{task}: train / val / test"] = text + (
            " (ceiling smaller)" if smaller else ""
        )
    frame = pd.DataFrame(table).T.fillna("–")
    order = [source] if source in frame.index else []
    frame = frame.loc[order + sorted(c for c in frame.index if c != source)]
    frame.index = [f"{c} (training cohort)" if c == source else c for c in frame.index]
    frame.index.name = "cohort"
    return frame


def seed_spread_table(result: ProtocolResult, task: str, order: Sequence[str] = ()) -> pd.DataFrame:
    """Per model and test cohort: the per-encoder-seed means as ``median [min–max] (k seeds)``."""
    summary = result.summary
    summary = summary[
        (summary["task"] == task)
        & summary["setting"].isin(["source", "out-of-distribution"])
        & (summary["model"] != MEAN_PREDICTOR)
    ]
    if summary.empty:
        return pd.DataFrame()
    digits = DIGITS.get(str(summary["metric"].iloc[0]), 3)
    table: dict[str, dict[str, str]] = {}
    for row in summary.itertuples(index=False):
        cell = spread(row.seed_median, row.seed_min, row.seed_max, digits)
        seeds = int(row.n_encoder_seeds)
        table.setdefault(str(row.model), {})[str(row.test_cohort)] = (
            f"{cell} ({seeds} seed{'s' if seeds != 1 else ''})"
        )
    frame = pd.DataFrame(table).fillna("–").sort_index()
    first = [m for m in order if m in frame.columns]
    frame = frame[first + sorted(set(frame.columns) - set(first))]
    frame.index.name = "test cohort"
    return frame


def shift_summary(result: ProtocolResult) -> pd.DataFrame:
    """Feature shift of each target from the training cohort: median [min–max] over seeds."""
    shift = result.shift
    if shift is None or shift.empty:
        return pd.DataFrame()
    rows = []
    keys = ["train_cohort", "model", "target_cohort"]
    for (train, model, target), group in shift.groupby(keys, sort=True):
        largest = group["max_abs_shift"].astype(float)
        beyond = group["n_beyond_threshold"].astype(float)
        rows.append(
            {
                "trained on": train,
                "model": model,
                "target cohort": target,
                "max |shift| (training SDs)": spread(
                    largest.median(), largest.min(), largest.max(), 1
                ),
                "mean |shift| (training SDs)": fmt(group["mean_abs_shift"].median(), 2),
                f"dimensions > {fmt(group['threshold_sd'].iloc[0], 0)} SDs": spread(
                    beyond.median(), beyond.min(), beyond.max(), 0
                ),
                "encoder seeds": str(group["encoder_seed"].nunique()),
            }
        )
    frame = pd.DataFrame(rows)
    index = (
        ["model", "target cohort"]
        if frame["trained on"].nunique() == 1
        else ["trained on", "model", "target cohort"]
    )
    return frame.drop(columns=[] if len(index) == 3 else ["trained on"]).set_index(index)


@dataclass
class SubgroupRows:
    """The subgroup table and what was left out of it.

    Attributes:
        table: one row per (task, test cohort, variable, group) with ``n`` and
            each model's metric (display strings).
        suppressed: rows left out because fewer than ``min_n`` test ECGs per head
            fell in the group.
        omitted: rows beyond ``max_rows`` (after suppression).
        min_n: the threshold used.
    """

    table: pd.DataFrame
    suppressed: int = 0
    omitted: int = 0
    min_n: int = DEFAULT_MIN_CELL_N


def subgroup_summary(
    result: ProtocolResult,
    models: Sequence[str],
    min_n: int = DEFAULT_MIN_CELL_N,
    max_rows: int = 80,
) -> SubgroupRows:
    """OOD metric per subgroup (sex, age bin, ethnicity, device): mean over seeds and runs.

    ``n`` is the median number of test ECGs per head in the group (the same
    target ECGs for every head of a cohort). Groups with ``n < min_n`` are
    suppressed: a metric on a handful of ECGs says little and can point at few
    patients.
    """
    table = result.subgroups
    if table is None or table.empty:
        return SubgroupRows(pd.DataFrame(), min_n=min_n)
    table = table[
        (table["setting"] == "out-of-distribution")
        & table["model"].isin(models)
        & (table["variable"] != "all")
    ]
    if table.empty:
        return SubgroupRows(pd.DataFrame(), min_n=min_n)
    several = table["train_cohort"].nunique() > 1
    keys = ["train_cohort"] * several + ["task", "test_cohort", "variable", "group"]
    means = table.groupby([*keys, "model"], sort=True, observed=True)["value"].mean()
    counts = table.groupby(keys, sort=True, observed=True)["n"].median()
    metric_of = table.groupby("task", observed=True)["metric"].first().to_dict()
    wide = means.unstack("model")
    wide = wide[[m for m in models if m in wide.columns]]
    n = counts.reindex(wide.index)
    small = (n < min_n) | n.isna()
    suppressed = int(small.sum())
    wide = wide[~small.to_numpy()].dropna(how="all")
    omitted = max(0, len(wide) - max_rows)
    wide = wide.head(max_rows)
    out = pd.DataFrame(index=wide.index)
    out["n"] = counts.reindex(wide.index).map(lambda v: fmt(v, 0))
    tasks = wide.index.get_level_values("task")
    for model in wide.columns:
        out[model] = [
            fmt(v, DIGITS.get(str(metric_of.get(t)), 3))
            for v, t in zip(wide[model], tasks, strict=True)
        ]
    names = ["trained on"] * several + ["task", "test cohort", "variable", "group"]
    out.index = out.index.set_names(names)
    if len(out):
        out = out.rename(index={"age_bin": "age bin"}, level="variable")
    return SubgroupRows(out, suppressed, omitted, min_n)
