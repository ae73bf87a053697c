"""Report figures (matplotlib, no pyplot: each figure is a ``Figure`` rendered by Agg).

Every cohort keeps one colour across all figures (:func:`cohort_colours`) and
every model one colour (:func:`model_colours`). Figures show aggregates only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cape.protocols.featuresets import MEAN_PREDICTOR
from cape.protocols.results import ProtocolResult
from cape.report.collect import PretrainRun

# Colour-blind-friendly qualitative palette (Okabe & Ito 2008), then tab20 for more.
_OKABE_ITO = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
# Models get Paul Tol's muted scheme, distinct from the cohorts' colours.
_TOL_MUTED = (
    "#882255",
    "#332288",
    "#117733",
    "#AA4499",
    "#44AA99",
    "#999933",
    "#CC6677",
    "#88CCEE",
)
_GREY = "#8c8c8c"
DPI = 110


def _palette(n: int) -> list[str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    extra = [to_hex(colormaps["tab20"](k % 20)) for k in range(max(0, n - len(_OKABE_ITO)))]
    return [*_OKABE_ITO, *extra][:n]


def cohort_colours(cohorts: Sequence[str]) -> dict[str, str]:
    """One colour per cohort, fixed by the sorted cohort names (same in every figure)."""
    names = sorted(set(cohorts))
    return dict(zip(names, _palette(len(names)), strict=True))


def model_colours(models: Sequence[str]) -> dict[str, str]:
    """One colour per model; baselines (untrained, mean predictor) in greys."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    trained = list(dict.fromkeys(m for m in models if m not in ("untrained", MEAN_PREDICTOR)))
    extra = [to_hex(colormaps["tab20b"](k % 20)) for k in range(max(0, len(trained) - 8))]
    colours = dict(zip(trained, [*_TOL_MUTED, *extra], strict=False))
    colours["untrained"] = _GREY
    colours[MEAN_PREDICTOR] = "#c7c7c7"
    return colours


def save(figure: Figure, directory: Path, name: str, svg: bool = False) -> Path:
    """Write ``directory/name.png`` (and ``.svg``); returns the PNG path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    # Constrained layout already fits labels inside the figure: no second "tight" draw.
    figure.savefig(path, dpi=DPI)
    if svg:
        figure.savefig(directory / f"{name}.svg")
    return path


def _new(
    n_panels: int, width: float = 4.6, height: float = 3.6, max_columns: int = 3
) -> tuple[Figure, list[Axes]]:
    """A figure of ``n_panels`` axes, at most ``max_columns`` per row (unused ones hidden)."""
    columns = min(n_panels, max_columns)
    rows = -(-n_panels // columns)
    figure = Figure(figsize=(width * columns, height * rows), layout="constrained")
    axes = list(figure.subplots(rows, columns, squeeze=False).ravel())
    for spare in axes[n_panels:]:
        spare.set_visible(False)
    return figure, axes[:n_panels]


# ------------------------------------------------------------------------- composition
def _ordered(present: Sequence[str], order: Sequence[str]) -> list[str]:
    """``present`` names in ``order`` first, then the rest sorted, the mean predictor last."""
    first = list(dict.fromkeys(m for m in order if m in present and m != MEAN_PREDICTOR))
    rest = sorted(set(present) - set(first) - {MEAN_PREDICTOR})
    return first + rest + ([MEAN_PREDICTOR] if MEAN_PREDICTOR in present else [])


def composition_bars(
    result: ProtocolResult,
    tasks: Sequence[str],
    colours: Mapping[str, str],
    order: Sequence[str] = (),
) -> Figure | None:
    """Grouped bars (Fig. 2): per labelled cohort, one bar per model, mean with 95% CI."""
    summary = result.summary[result.summary["setting"] == "in-distribution"]
    tasks = [t for t in tasks if (summary["task"] == t).any()]
    if not tasks:
        return None
    figure, axes = _new(len(tasks), width=5.2)
    for ax, task in zip(axes, tasks, strict=True):
        rows = summary[summary["task"] == task]
        cohorts = sorted(rows["test_cohort"].astype(str).unique())
        models = _ordered(list(rows["model"].astype(str).unique()), order)
        width = 0.8 / max(len(models), 1)
        x = np.arange(len(cohorts))
        for k, model in enumerate(models):
            cell = rows[rows["model"] == model].set_index("test_cohort").reindex(cohorts)
            mean = cell["mean"].to_numpy(dtype=float)
            error = np.vstack(
                [
                    mean - cell["ci_low"].to_numpy(dtype=float),
                    cell["ci_high"].to_numpy(dtype=float) - mean,
                ]
            )
            ax.bar(
                x + (k - (len(models) - 1) / 2) * width,
                mean,
                width,
                yerr=np.nan_to_num(error),
                capsize=2,
                label=model,
                color=colours.get(model, _GREY),
                edgecolor="white",
                linewidth=0.5,
            )
        metric = str(rows["metric"].iloc[0])
        ax.set_xticks(x, cohorts)
        ax.set_xlabel("labelled cohort (head trained and tested here)")
        ax.set_ylabel("MAE (years)" if metric == "mae" else metric.replace("_", " ").upper())
        if metric != "mae":
            low = np.nanmin(rows["ci_low"].to_numpy(dtype=float))
            ax.set_ylim(max(0.0, min(0.5, low - 0.05)), 1.0)
        ax.set_title(f"{task}: mean and 95% CI over runs")
        ax.grid(axis="y", alpha=0.3)
    axes[-1].legend(title="features", fontsize=8, loc="lower right", framealpha=0.9)
    return figure


# ---------------------------------------------------------------------- age per cohort
def age_distribution(manifest: pd.DataFrame, colours: Mapping[str, str]) -> Figure | None:
    """Age per cohort (Fig. 5, left): density histograms and a violin plot, per ECG."""
    if "age" not in manifest:
        return None
    age = pd.to_numeric(manifest["age"], errors="coerce")
    cohorts = [
        c
        for c in sorted(manifest["cohort"].astype(str).unique())
        if age[manifest["cohort"] == c].notna().any()
    ]
    if not cohorts:
        return None
    figure, (hist, violin) = _new(2)
    values = [age[manifest["cohort"] == c].dropna().to_numpy() for c in cohorts]
    bins = np.arange(
        np.floor(min(v.min() for v in values) / 5) * 5, max(v.max() for v in values) + 5, 5
    )
    for cohort, ages in zip(cohorts, values, strict=True):
        hist.hist(
            ages,
            bins=bins.tolist(),
            density=True,
            histtype="step",
            linewidth=1.6,
            color=colours[cohort],
            label=f"{cohort} (n = {ages.size:,})",
        )
    hist.set_xlabel("age at recording (years)")
    hist.set_ylabel("density (fraction of ECGs per year)")
    hist.legend(fontsize=8)
    hist.set_title("age distribution per cohort")
    parts = violin.violinplot(values, showmedians=True)
    bodies = cast(list[Any], parts["bodies"])  # a list of PolyCollections; typed loosely
    for body, cohort in zip(bodies, cohorts, strict=True):
        body.set_facecolor(colours[cohort])
        body.set_alpha(0.6)
    for key in ("cbars", "cmins", "cmaxes", "cmedians"):
        parts[key].set_color("#333333")
    violin.set_xticks(np.arange(1, len(cohorts) + 1), cohorts)
    violin.set_ylabel("age at recording (years)")
    violin.set_title("median and range")
    for ax in (hist, violin):
        ax.grid(alpha=0.3)
    return figure


def mae_per_age_bin(
    result: ProtocolResult,
    models: Sequence[str],
    colours: Mapping[str, str],
    cohort_colours: Mapping[str, str],
    width_years: int = 10,
) -> Figure | None:
    """OOD age MAE per age bin (Fig. 5, right), from the saved predictions.

    Each head's (model, encoder seed, run) MAE per bin is averaged over heads;
    error bars are the SE across heads. One panel per test cohort (its own
    test split for the training cohort, the OOD test ECGs for the others).
    """
    from cape.diagnostics import age_bins

    predictions = result.predictions
    if predictions.empty:
        return None
    rows = predictions[
        (predictions["task"] == "age")
        & predictions["setting"].isin(["source", "out-of-distribution"])
        & predictions["model"].isin([*models, MEAN_PREDICTOR])
    ]
    if rows.empty:
        return None
    rows = rows.assign(
        error=(rows["y_pred"] - rows["y_true"]).abs(),
        bin=age_bins(rows["y_true"].to_numpy(), width_years).astype(str),
    )
    cohorts = sorted(rows["cohort"].astype(str).unique())
    figure, axes = _new(len(cohorts), width=4.4)
    keys = ["model", "encoder_seed", "run", "bin"]
    for ax, cohort in zip(axes, cohorts, strict=True):
        cell = rows[rows["cohort"] == cohort]
        per_head = cell.groupby(keys, observed=True)["error"].mean().reset_index()
        order = sorted(per_head["bin"].unique(), key=lambda b: float(b.split("-")[0].rstrip("+")))
        x = np.arange(len(order))
        for model in [m for m in [*models, MEAN_PREDICTOR] if (per_head["model"] == m).any()]:
            grouped = per_head[per_head["model"] == model].groupby("bin")["error"]
            mean = grouped.mean().reindex(order)
            se = (grouped.std(ddof=1) / np.sqrt(grouped.count())).reindex(order).fillna(0.0)
            ax.errorbar(
                x,
                mean,
                yerr=se,
                marker="o",
                markersize=3,
                capsize=2,
                label=model,
                color=colours.get(model, _GREY),
                linestyle="--" if model == MEAN_PREDICTOR else "-",
            )
        ax.set_xticks(x, order, rotation=45)
        ax.set_xlabel("true age (years)")
        ax.set_ylabel("MAE (years)")
        setting = "source" if (cell["setting"] == "source").any() else "out-of-distribution"
        title = f"{cohort} ({'training cohort' if setting == 'source' else 'OOD'})"
        ax.set_title(title, color=cohort_colours.get(cohort, "black"))
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=8, title="features")
    return figure


# ------------------------------------------------------------------------- pretraining
def pretraining_curves(
    runs: Sequence[PretrainRun], colours: Mapping[str, str], order: Sequence[str] = ()
) -> Figure | None:
    """Training loss against step, one panel per model, encoder seeds overlaid.

    Step records (every ``log_every_steps``) are drawn as thin lines, epoch
    means as markers at the epoch's last step.
    """
    models = _ordered([run.model for run in runs if not run.log.empty], order)
    if not models:
        return None
    figure, axes = _new(len(models), width=4.4)
    styles = ("-", "--", ":", "-.")
    for ax, model in zip(axes, models, strict=True):
        seeds = [run for run in runs if run.model == model and not run.log.empty]
        for k, run in enumerate(sorted(seeds, key=lambda r: r.seed)):
            log = run.log
            steps = log[log["kind"] == "step"] if "kind" in log else log.iloc[0:0]
            epochs = log[log["kind"] == "epoch"] if "kind" in log else log.iloc[0:0]
            colour = colours.get(model, _GREY)
            if len(steps) and "global_step" in steps:
                ax.plot(
                    steps["global_step"],
                    steps["loss"],
                    linestyle=styles[k % 4],
                    color=colour,
                    alpha=0.5,
                    linewidth=1.0,
                )
            if len(epochs) and "global_step" in epochs:
                ax.plot(
                    epochs["global_step"],
                    epochs["loss"],
                    marker="o",
                    markersize=3,
                    linestyle=styles[k % 4],
                    color=colour,
                    label=f"seed {run.seed}",
                )
        ax.set_xlabel("training step (optimizer updates)")
        ax.set_ylabel("contrastive loss (InfoNCE, nats)")
        batching = seeds[0].batching if seeds else None
        ax.set_title(f"{model}" + (f" (batching: {batching})" if batching else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="epoch means")
    return figure
