"""Means over cohorts in the report: the Fig. 2 aggregate and Table 3's mean over targets.

The protocols save them (``aggregate.parquet``, :mod:`cape.protocols.aggregates`);
for results written before that table existed they are computed here from the
saved per-head results with the same function, and the report says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cape.protocols.aggregates import across_cohorts
from cape.protocols.featuresets import MEAN_PREDICTOR
from cape.protocols.results import ProtocolResult
from cape.report.figures import label
from cape.report.tables import DIGITS, fmt, fmt_p, mean_se

MEAN_ROW = "mean over the external cohorts"


def aggregate_of(
    result: ProtocolResult, compare: Sequence[str] | None = None
) -> tuple[pd.DataFrame, bool]:
    """``(aggregate table, computed_here)``: the saved table, else one computed from results."""
    if result.aggregate is not None and len(result.aggregate):
        return result.aggregate, False
    if result.results is None or result.results.empty:
        return pd.DataFrame(), False
    pair = tuple(compare) if compare and len(compare) == 2 else None
    return across_cohorts(result.results, pair), True


def _row(table: pd.DataFrame, **keys: object) -> pd.Series | None:
    mask = np.ones(len(table), dtype=bool)
    for key, value in keys.items():
        mask &= (table[key].astype(str) == str(value)).to_numpy()
    rows = table[mask]
    return None if rows.empty else rows.iloc[0]


def composition_mean_table(aggregate: pd.DataFrame, tasks: Sequence[str]) -> pd.DataFrame:
    """Rows models, per task ``mean [95% CI]`` over the labelled cohorts and the Kruskal–Wallis p."""
    cells = aggregate[aggregate["setting"] == "in-distribution"] if len(aggregate) else aggregate
    if cells.empty:
        return pd.DataFrame()
    table: dict[str, dict[str, str]] = {}
    for task in tasks:
        rows = cells[cells["task"] == task]
        if rows.empty:
            continue
        digits = DIGITS.get(str(rows["metric"].iloc[0]), 3)
        for row in rows.itertuples(index=False):
            entry = table.setdefault(str(row.model), {})
            entry[f"{task}: mean [95% CI]"] = (
                f"{fmt(row.mean, digits)} [{fmt(row.ci_low, digits)}–{fmt(row.ci_high, digits)}]"
            )
            entry[f"{task}: p Kruskal–Wallis"] = fmt_p(row.p_value)
            entry[f"{task}: cohorts"] = str(row.n_cohorts)
    frame = pd.DataFrame(table).T.fillna("–")
    order = [m for m in frame.index if m != MEAN_PREDICTOR] + (
        [MEAN_PREDICTOR] if MEAN_PREDICTOR in frame.index else []
    )
    frame = frame.loc[order]
    frame.index.name = "model"
    return frame


def composition_mean_figure(
    aggregate: pd.DataFrame, tasks: Sequence[str], colours: Mapping[str, str]
) -> Figure | None:
    """Fig. 2's aggregate: per task, one bar per model, mean over cohorts with its 95% CI."""
    cells = aggregate[aggregate["setting"] == "in-distribution"] if len(aggregate) else aggregate
    tasks = [t for t in tasks if len(cells) and (cells["task"] == t).any()]
    if not tasks:
        return None
    figure = Figure(figsize=(4.2 * len(tasks), 3.4), layout="constrained")
    axes = figure.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks, strict=True):
        rows = cells[cells["task"] == task]
        models = [m for m in rows["model"].astype(str) if m != MEAN_PREDICTOR]
        models += [MEAN_PREDICTOR] if (rows["model"] == MEAN_PREDICTOR).any() else []
        rows = rows.set_index("model").loc[models]
        mean = rows["mean"].to_numpy(dtype=float)
        error = np.vstack(
            [
                mean - rows["ci_low"].to_numpy(dtype=float),
                rows["ci_high"].to_numpy(dtype=float) - mean,
            ]
        )
        x = np.arange(len(models))
        ax.bar(
            x,
            mean,
            yerr=np.nan_to_num(error),
            capsize=3,
            color=[colours.get(m, "#8c8c8c") for m in models],
        )
        ax.set_xticks(x, [label(m) for m in models], rotation=30, ha="right")
        metric = str(rows["metric"].iloc[0])
        ax.set_ylabel("MAE (years)" if metric == "mae" else metric.replace("_", " ").upper())
        p_values = rows["p_value"].dropna()
        title = f"{task}: mean over {int(rows['n_cohorts'].iloc[0])} cohorts"
        if len(p_values):
            title += f"\nKruskal–Wallis {fmt_p(p_values.iloc[0])}"
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    return figure


def add_ood_mean_row(
    table: pd.DataFrame, aggregate: pd.DataFrame, task: str, pair: Sequence[str] | None
) -> pd.DataFrame:
    """Table 3 with a last row: each column's metric averaged over the external cohorts.

    Model columns (and the untrained encoder and mean predictor) show mean (SE)
    over (encoder seed, run) of the per-run mean over the targets; the
    in-cohort ceilings the same for the target cohorts' own heads; the
    Wilcoxon column the paired test of the compared models on those means.
    """
    if table.empty or aggregate is None or aggregate.empty:
        return table
    rows = aggregate[aggregate["task"] == task]
    ood = rows[rows["setting"] == "out-of-distribution"]
    if ood.empty:
        return table
    digits = DIGITS.get(str(ood["metric"].iloc[0]), 3)
    n_cohorts = int(ood["n_cohorts"].iloc[0])
    line: dict[str, str] = {}
    for column in table.columns:
        if column.startswith("in-cohort ceiling ("):
            model = column.removeprefix("in-cohort ceiling (").removesuffix(")")
            cell = _row(rows, setting="in-cohort", model=model)
        elif column.startswith("p Wilcoxon"):
            cell = None
            tested = ood.dropna(subset=["p_value"])
            if pair and len(tested):
                line[column] = fmt_p(tested["p_value"].iloc[0])
                continue
        elif column.startswith("p "):
            line[column] = "–"
            continue
        else:
            cell = _row(ood, model=column.removesuffix(" (untrained)"))
        line[column] = "–" if cell is None else mean_se(cell["mean"], cell["se"], digits)
    label = f"{MEAN_ROW} ({n_cohorts})"
    return pd.concat([table, pd.DataFrame([line], index=pd.Index([label], name=table.index.name))])
