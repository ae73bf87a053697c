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


def label(text: object) -> str:
    """A user-given name (cohort, model, device) as plain figure text.

    ``$`` would start matplotlib's mathtext (an odd one fails the whole figure)
    and a leading ``_`` hides an artist from its legend.
    """
    text = str(text).replace("$", r"\$")
    return " " + text if text.startswith("_") else text


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
                label=label(model),
                color=colours.get(model, _GREY),
                edgecolor="white",
                linewidth=0.5,
            )
        metric = str(rows["metric"].iloc[0])
        ax.set_xticks(x, [label(c) for c in cohorts])
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
            label=f"{label(cohort)} (n = {ages.size:,})",
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
    violin.set_xticks(np.arange(1, len(cohorts) + 1), [label(c) for c in cohorts])
    violin.set_ylabel("age at recording (years)")
    violin.set_title("median and range")
    for ax in (hist, violin):
        ax.grid(alpha=0.3)
    return figure


def _bin_start(label: str) -> float:
    return float(str(label).split("-")[0].rstrip("+"))


def _age_bin_errors(result: ProtocolResult, models: Sequence[str]) -> pd.DataFrame:
    """Per head (model, encoder seed, run), test cohort and age bin: ``mae`` and ``n``.

    Read from the protocol's subgroup table (the bins of the report's subgroup
    table, top-coded ages in ``90+``); from the saved predictions, binned by
    10 years, when a run saved no subgroup table.
    """
    from cape.diagnostics import age_bins

    wanted = [*models, MEAN_PREDICTOR]
    settings = ["source", "out-of-distribution"]
    table = result.subgroups
    if table is not None and len(table) and (table["variable"] == "age_bin").any():
        rows = table[
            (table["variable"] == "age_bin")
            & (table["task"] == "age")
            & table["setting"].isin(settings)
            & table["model"].isin(wanted)
        ]
        return pd.DataFrame(
            {
                "model": rows["model"].astype(str),
                "encoder_seed": rows["encoder_seed"],
                "run": rows["run"],
                "setting": rows["setting"].astype(str),
                "cohort": rows["test_cohort"].astype(str),
                "bin": rows["group"].astype(str),
                "mae": rows["value"].astype(float),
                "n": rows["n"].astype(float),
            }
        )
    predictions = result.predictions
    if predictions.empty:
        return pd.DataFrame()
    rows = predictions[
        (predictions["task"] == "age")
        & predictions["setting"].isin(settings)
        & predictions["model"].isin(wanted)
    ]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(
        error=(rows["y_pred"] - rows["y_true"]).abs(),
        bin=age_bins(rows["y_true"].to_numpy(), 10).astype(str),
        cohort=rows["cohort"].astype(str),
    )
    keys = ["model", "encoder_seed", "run", "setting", "cohort", "bin"]
    grouped = rows.groupby(keys, observed=True)["error"]
    return grouped.agg(mae="mean", n="size").reset_index()


def mae_per_age_bin(
    result: ProtocolResult,
    models: Sequence[str],
    colours: Mapping[str, str],
    cohort_colours: Mapping[str, str],
    min_n: int = 1,
) -> tuple[Figure | None, list[str]]:
    """OOD age MAE per 10-year age bin (Fig. 5, right), with the ECGs in each bin.

    Each head's (model, encoder seed, run) MAE per bin is averaged over heads;
    error bars are the SE across heads. One panel per test cohort (its own
    test split for the training cohort, the OOD test ECGs for the others); the
    tick labels give n, the test ECGs per head in the bin. Bins with fewer than
    ``min_n`` ECGs are left out, as in the subgroup table, and a cohort left
    with no bin gets no panel. The legend sits outside the panels.

    Returns:
        ``(figure or None, cohorts left without a panel)``.
    """
    errors = _age_bin_errors(result, models)
    if errors.empty:
        return None, []
    errors = errors[errors["mae"].notna()]
    counts = errors.groupby(["cohort", "bin"])["n"].median()
    kept = counts[counts >= min_n]
    cohorts = sorted(errors["cohort"].unique())
    shown = [c for c in cohorts if c in kept.index.get_level_values("cohort")]
    dropped = [c for c in cohorts if c not in shown]
    if not shown:
        return None, dropped
    figure, axes = _new(len(shown), width=4.4)
    handles: dict[str, Any] = {}
    for ax, cohort in zip(axes, shown, strict=True):
        # Every bin of the cohort keeps its place; suppressed ones stay empty (the lines
        # break there rather than join bins that are not neighbours).
        bins = sorted(counts.loc[cohort].index, key=_bin_start)
        small = {b for b in bins if (cohort, b) not in kept.index}
        cell = errors[(errors["cohort"] == cohort) & ~errors["bin"].isin(small)]
        x = np.arange(len(bins))
        for model in [m for m in [*models, MEAN_PREDICTOR] if (cell["model"] == m).any()]:
            grouped = cell[cell["model"] == model].groupby("bin")["mae"]
            mean = grouped.mean().reindex(bins)
            se = (grouped.std(ddof=1) / np.sqrt(grouped.count())).reindex(bins).fillna(0.0)
            handles[model] = ax.errorbar(
                x,
                mean,
                yerr=se,
                marker="o",
                markersize=4,
                capsize=2,
                color=colours.get(model, _GREY),
                linestyle="--" if model == MEAN_PREDICTOR else "-",
            )
        labels = [
            f"{label(b)}\n" + (f"n<{min_n}" if b in small else f"n={int(kept.loc[(cohort, b)])}")
            for b in bins
        ]
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_xlabel("true age (years); n: test ECGs per head")
        ax.set_ylabel("MAE (years)")
        source = (cell["setting"] == "source").any()
        title = f"{label(cohort)} ({'training cohort' if source else 'OOD'})"
        ax.set_title(title, color=cohort_colours.get(cohort, "black"))
        ax.grid(alpha=0.3)
    figure.legend(
        list(handles.values()),
        [label(m) for m in handles],
        title="features",
        fontsize=8,
        loc="outside right upper",
    )
    return figure, dropped


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
        ax.set_title(label(model) + (f" (batching: {label(batching)})" if batching else ""))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a run without epoch records has no markers
            ax.legend(fontsize=8, title="epoch means")
    return figure
