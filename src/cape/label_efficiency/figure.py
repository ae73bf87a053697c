"""The label-efficiency figure: metric vs share of training patients (log x), one line per method.

One panel per test cohort. Each method's line joins its mean over seeds;
error bars span the seeds' values (lowest to highest: with the usual 3 to 5
seeds a Student-t interval is several times wider and lives in the tables),
and the seeds' own values are the faint dots. The mean predictor is a dashed
grey reference. Tick labels give the share and the median number of
training patients it meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cape.label_efficiency.cells import MEAN_PREDICTOR
from cape.label_efficiency.markdown import LOWER_IS_BETTER, metric_name

COLOURS = {
    "linear": "#1f77b4",
    "mlp": "#2ca02c",
    "finetune": "#d62728",
    "scratch": "#9467bd",
    MEAN_PREDICTOR: "#7f7f7f",
}
MARKERS = {"linear": "o", "mlp": "s", "finetune": "D", "scratch": "^", MEAN_PREDICTOR: ""}


def _literal(text: object) -> str:
    # ``$`` would start matplotlib's mathtext.
    return str(text).replace("$", r"\$")


def label_efficiency_figure(
    summary: pd.DataFrame, results: pd.DataFrame, methods: Sequence[str]
) -> Figure:
    """The figure (not saved): one axis per test cohort.

    Args:
        summary: :func:`cape.label_efficiency.tables.summarise`'s table.
        results: the per-seed results (the dots).
        methods: display order (the mean predictor is drawn last, when present).
    """
    cohorts = list(dict.fromkeys(summary["test_cohort"])) or [""]
    figure = Figure(figsize=(4.6 * len(cohorts) + 1.6, 3.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(cohorts), squeeze=False)[0]
    order = [m for m in (*methods, MEAN_PREDICTOR) if m in set(summary["method"])]
    metric = str(summary["metric"].iloc[0]) if len(summary) else ""
    for axis, cohort in zip(axes, cohorts, strict=True):
        block = summary[summary["test_cohort"] == cohort]
        for method in order:
            line = block[block["method"] == method].sort_values("fraction")
            line = line[np.isfinite(line["mean"].to_numpy(dtype=float))]
            if line.empty:
                continue
            x = line["fraction"].to_numpy(dtype=float)
            mean = line["mean"].to_numpy(dtype=float)
            seeds = results[
                (results["test_cohort"] == cohort)
                & (results["method"] == method)
                & np.isfinite(results["value"].to_numpy(dtype=float))
            ]
            spread = seeds.groupby("fraction")["value"].agg(["min", "max"]).reindex(x)
            # The mean of equal values can land an ulp outside them: clip at zero.
            errors = np.stack(
                [mean - spread["min"].to_numpy(float), spread["max"].to_numpy(float) - mean]
            ).clip(min=0.0)
            reference = method == MEAN_PREDICTOR
            axis.errorbar(
                x,
                mean,
                yerr=None if reference else errors,
                color=COLOURS.get(method),
                marker=MARKERS.get(method, "o"),
                linestyle="--" if reference else "-",
                capsize=3,
                label=_literal(method),
            )
            if not reference:
                axis.scatter(
                    seeds["fraction"].to_numpy(dtype=float),
                    seeds["value"].to_numpy(dtype=float),
                    color=COLOURS.get(method),
                    alpha=0.3,
                    s=12,
                    linewidths=0,
                )
        fractions = sorted(block["fraction"].unique())
        axis.set_xscale("log")
        axis.set_xticks(fractions)
        labels = []
        for fraction in fractions:
            patients = block.loc[block["fraction"] == fraction, "n_train_patients"].median()
            share = f"{float(fraction) * 100:g}%"
            labels.append(f"{share}\n({patients:.0f} pat.)" if pd.notna(patients) else share)
        axis.set_xticks(fractions, labels)
        axis.minorticks_off()
        setting = str(block["setting"].iloc[0]) if len(block) else ""
        axis.set_title(_literal(f"{cohort} ({setting})"), fontsize=10)
        axis.set_xlabel("training patients (share)")
        direction = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
        axis.set_ylabel(f"{metric_name(metric)}, {direction}")
        axis.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, names, loc="outside right upper", frameon=False)
    return figure


def save_figure(figure: Figure, path: Path, dpi: int = 150) -> Path:
    """Write the figure as PNG (atomically)."""
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    figure.savefig(temporary, dpi=dpi)
    temporary.replace(path)
    return path
