"""Sweeps: the same study at several values of one setting (or a grid of two), and what
changes with it.

``sweep: {key: simulate.artefact_strength, values: [0, 0.5, 1, 2]}`` runs one
complete (cached) study per value under ``RUN/sweep/<name>=<value>/``; with
``by: {key: simulate.visit_variability, values: [1, 3]}`` it runs one per cell
of the grid (``RUN/sweep/<name>=<value>,<name2>=<value2>/``): the regime map of
*when IDB matters*. Then it summarises, per cell and encoder seed:

- the OOD gap of each task: mean over target cohorts of (model A - model B),
  for the study's ``evaluate.ood.compare`` pair (random vs IDB): positive age
  MAE gap = B (IDB) has lower OOD error; for AUROC the sign is flipped so that
  positive always means "B better"; and the Wilcoxon p-value over all matched
  (encoder seed, run) pairs per target cohort;
- in-distribution performance (the heads' own cohort) of every model, the
  untrained encoder included: does pretraining help at all here?
- cohort identifiability (accuracy) of every model, the untrained encoder and
  the band powers of the stored signals (``signal-spectrum``);
- same-patient retrieval: top-1 with mixed negatives and the mixed-minus-
  same-cohort gap (what a cohort shortcut could pay);
- the positive controls of every cell (:mod:`cape.report.controls`): does each
  pretrained model beat its untrained twins in distribution, and is there a
  cohort shortcut in the random-batch features? A cell whose learning control
  fails cannot speak to the OOD gap it shows.

It writes ``sweep/summary.csv``, ``sweep/controls.csv``, ``sweep/sweep.png``
(lines for one axis, heat maps of the median over seeds for a grid) and
``sweep/sweep.md``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from cape.errors import CapeError

_HIGHER_IS_BETTER = {"auroc", "macro_auroc", "accuracy", "r2"}
Cell = dict[str, Any]  # sweep key -> value of one sub-study


def value_label(value: Any) -> str:
    """Directory-safe text for a sweep value."""
    return str(value).replace("/", "_").replace(" ", "")


def cell_label(cell: Cell) -> str:
    """``name=value[,name2=value2]``: a sub-study's directory name."""
    return ",".join(f"{key.split('.')[-1]}={value_label(value)}" for key, value in cell.items())


def ood_gaps(run_dir: Path, model_a: str, model_b: str) -> pd.DataFrame:
    """Per encoder seed and task: mean over OOD target cohorts of the A-vs-B difference.

    Positive means ``model_b`` is better (lower error, or higher AUROC).
    """
    path = run_dir / "evaluation" / "ood" / "summary_by_seed.parquet"
    if not path.is_file():
        return pd.DataFrame(columns=["task", "metric", "encoder_seed", "gap"])
    table = pd.read_parquet(path)
    table = table[
        (table["setting"] == "out-of-distribution") & table["model"].isin([model_a, model_b])
    ]
    wide = table.pivot_table(
        index=["task", "metric", "encoder_seed", "test_cohort"], columns="model", values="mean"
    ).dropna()
    if wide.empty or model_a not in wide or model_b not in wide:
        return pd.DataFrame(columns=["task", "metric", "encoder_seed", "gap"])
    difference = wide[model_a] - wide[model_b]
    metrics = wide.index.get_level_values("metric")
    sign = np.where(np.isin(metrics, list(_HIGHER_IS_BETTER)), -1.0, 1.0)
    gap = (difference * sign).groupby(level=["task", "metric", "encoder_seed"]).mean()
    return gap.rename("gap").reset_index()


def ood_p_values(run_dir: Path) -> pd.DataFrame:
    """Wilcoxon p-values over all matched pairs, one per (task, metric, OOD target cohort)."""
    path = run_dir / "evaluation" / "ood" / "tests.parquet"
    columns = ["task", "metric", "test_cohort", "p_value", "estimate"]
    if not path.is_file():
        return pd.DataFrame(columns=columns)
    table = pd.read_parquet(path)
    table = table[
        (table["test"] == "wilcoxon_signed_rank")
        & (table["scope"] == "all")
        & (table["setting"] == "out-of-distribution")
    ]
    return table[columns]


def in_distribution(run_dir: Path) -> pd.DataFrame:
    """Per model and encoder seed: the heads' metric on their own cohort's test ECGs."""
    path = run_dir / "evaluation" / "ood" / "summary_by_seed.parquet"
    if not path.is_file():
        return pd.DataFrame(columns=["model", "encoder_seed", "task", "metric", "mean"])
    table = pd.read_parquet(path)
    return table[table["setting"] == "source"][["model", "encoder_seed", "task", "metric", "mean"]]


def retrieval(run_dir: Path) -> pd.DataFrame:
    path = run_dir / "evaluation" / "retrieval.parquet"
    if not path.is_file():
        return pd.DataFrame(columns=["model", "encoder_seed", "top1_mixed", "gap"])
    return pd.read_parquet(path)[["model", "encoder_seed", "top1_mixed", "gap"]]


def identifiability(run_dir: Path) -> pd.DataFrame:
    """Cohort identifiability of every feature set (and the signal reference) of a sub-study."""
    path = run_dir / "evaluation" / "identifiability.parquet"
    if not path.is_file():
        return pd.DataFrame(columns=["model", "encoder_seed", "accuracy"])
    table = pd.read_parquet(path)
    table = table[table["target"] == "cohort"]
    return table[["model", "encoder_seed", "accuracy", "chance_majority"]]


def summarise_sweep(runs: Sequence[tuple[Cell, Path]], compare: tuple[str, str]) -> pd.DataFrame:
    """Tidy rows (sweep values, quantity, model, encoder seed, number) across the sweep."""
    model_a, model_b = compare
    rows: list[dict[str, Any]] = []
    for cell, run_dir in runs:

        def add(quantity: str, model: str, seed: Any, value: Any, cell: Cell = cell) -> None:
            rows.append(
                {**cell, "quantity": quantity, "model": model, "encoder_seed": seed, "value": value}
            )

        for _, row in ood_gaps(run_dir, model_a, model_b).iterrows():
            quantity = f"ood_gap_{row['task']}_{row['metric']}"
            add(quantity, f"{model_a}-{model_b}", row["encoder_seed"], row["gap"])
        for _, row in ood_p_values(run_dir).iterrows():
            quantity = f"ood_wilcoxon_p_{row['task']}_{row['metric']}"
            add(quantity, f"{model_a}-{model_b} on {row['test_cohort']}", "all", row["p_value"])
        for _, row in in_distribution(run_dir).iterrows():
            quantity = f"in_distribution_{row['task']}_{row['metric']}"
            add(quantity, row["model"], row["encoder_seed"], row["mean"])
        for _, row in identifiability(run_dir).iterrows():
            add("cohort_identifiability", row["model"], row["encoder_seed"], row["accuracy"])
        for _, row in retrieval(run_dir).iterrows():
            add("retrieval_top1_mixed", row["model"], row["encoder_seed"], row["top1_mixed"])
            add("retrieval_gap", row["model"], row["encoder_seed"], row["gap"])
    return pd.DataFrame(rows)


def sweep_controls(runs: Sequence[tuple[Cell, Path]], compare: tuple[str, str]) -> pd.DataFrame:
    """The positive controls of every cell: one row per (cell, control, model, task).

    The learning control is asked of both compared models, the shortcut control of
    the first (the random-batch model). A cell without results gets no rows.
    """
    from cape.report.collect import collect
    from cape.report.controls import controls_from_data

    frames = []
    for cell, run_dir in runs:
        table = controls_from_data(collect(run_dir), compare[0], list(compare))
        if len(table):
            frames.append(table.assign(**{key: value for key, value in cell.items()}))
    if not frames:
        return pd.DataFrame(columns=["control", "model", "verdict", "measured"])
    table = pd.concat(frames, ignore_index=True)
    first = list(runs[0][0])
    return table[first + [c for c in table.columns if c not in first]]


def _control_lines(controls: pd.DataFrame, keys: list[str]) -> list[str]:
    """Markdown: per cell, one line per control with its verdict and what it measured."""
    from cape.report.controls import control_lines

    if controls.empty:
        return []
    lines = ["## Positive controls per cell", ""]
    lines.append(
        "Learning control: each pretrained model against its untrained twins, in "
        "distribution (one-sided Mann-Whitney over heads, every seed better than its own "
        "twin); with linear probes: each seed's difference to its twin with a 95% "
        "patient-bootstrap interval, passing when every interval is above 0. Shortcut: is "
        "the random-batch model's cohort identifiability above the "
        "untrained encoder's and does knowing the cohort pay in retrieval? A cell whose "
        "learning control fails measures an OOD gap between encoders that learnt nothing "
        "the heads use."
    )
    lines.append("")
    for values, part in controls.groupby(keys, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        label = ", ".join(f"{k.split('.')[-1]} = {v}" for k, v in zip(keys, values, strict=True))
        lines.append(f"### {label}")
        lines.append("")
        lines.extend(f"- {line}" for line in control_lines(part))
        lines.append("")
    return lines


def _plot_lines(summary: pd.DataFrame, key: str, compare: tuple[str, str], path: Path) -> None:
    import matplotlib.pyplot as plt

    summary = summary[~summary["quantity"].str.startswith("ood_wilcoxon_p")]
    quantities = sorted(summary["quantity"].unique()) if len(summary) else []
    ncols = min(max(len(quantities), 1), 4)
    nrows = max(1, -(-len(quantities) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False)
    # One colour per model in every panel, seeds (dots) in their model's colour.
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    models = sorted(summary["model"].astype(str).unique()) if len(summary) else []
    colour = {model: palette[i % len(palette)] for i, model in enumerate(models)}
    for ax, quantity in zip(axes.ravel(), quantities, strict=False):
        part = summary[summary["quantity"] == quantity]
        for model, rows in part.groupby("model"):
            rows = rows.sort_values(key)
            values = rows[key].astype(float)
            c = colour[str(model)]
            ax.scatter(values, rows["value"].astype(float), s=12, alpha=0.5, color=c)
            median = rows.groupby(key)["value"].median()
            ax.plot(
                median.index.astype(float),
                median.to_numpy(),
                marker="o",
                color=c,
                label=str(model),
            )
        if quantity.startswith("ood_gap"):
            ax.axhline(0.0, color="grey", lw=0.8)
            ax.set_ylabel(f"{compare[0]} minus {compare[1]} (>0: {compare[1]} better)")
        ax.set_title(quantity.replace("_", " "))
        ax.set_xlabel(key)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(quantities) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _heat_panels(summary: pd.DataFrame, compare: tuple[str, str]) -> list[tuple[str, str]]:
    """(quantity, model) pairs worth a heat map, in reading order."""
    model_a, model_b = compare
    wanted = [
        (q, f"{model_a}-{model_b}") for q in sorted(summary["quantity"].unique()) if "ood_gap" in q
    ]
    for model in (model_a, model_b, "untrained", "signal-spectrum"):
        wanted.append(("cohort_identifiability", model))
    for model in (model_a, model_b, "untrained"):
        wanted.append(("retrieval_gap", model))
    for quantity in sorted(q for q in summary["quantity"].unique() if "in_distribution" in q):
        wanted += [(quantity, model_a), (quantity, model_b), (quantity, "untrained")]
    present = set(zip(summary["quantity"], summary["model"], strict=True))
    return [pair for pair in wanted if pair in present]


def _plot_grid(
    summary: pd.DataFrame, keys: list[str], compare: tuple[str, str], path: Path
) -> None:
    import matplotlib.pyplot as plt

    panels = _heat_panels(summary, compare)
    ncols = min(max(len(panels), 1), 4)
    nrows = max(1, -(-len(panels) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols, 3.4 * nrows), squeeze=False)
    x_key, y_key = keys
    for ax, (quantity, model) in zip(axes.ravel(), panels, strict=False):
        part = summary[(summary["quantity"] == quantity) & (summary["model"] == model)]
        grid = part.pivot_table(index=y_key, columns=x_key, values="value", aggfunc="median")
        # One colour scale per quantity, shared by its models, so panels compare.
        same = summary[summary["quantity"] == quantity]
        medians = same.groupby([*keys, "model"])["value"].median().to_numpy(dtype=float)
        diverging = quantity.startswith(("ood_gap", "retrieval_gap"))
        if diverging:
            limit = float(np.nanmax(np.abs(medians))) or 1.0
            low, high = -limit, limit
        else:
            low, high = float(np.nanmin(medians)), float(np.nanmax(medians))
        image = ax.imshow(
            grid.to_numpy(dtype=float),
            origin="lower",
            aspect="auto",
            cmap="RdBu" if diverging else "viridis",
            vmin=low,
            vmax=high if high > low else low + 1e-9,
        )
        for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
            if np.isfinite(value):
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="k",
                    bbox={"facecolor": "white", "alpha": 0.6, "lw": 0, "pad": 1},
                )
        ax.set_xticks(range(grid.shape[1]), [str(v) for v in grid.columns])
        ax.set_yticks(range(grid.shape[0]), [str(v) for v in grid.index])
        ax.set_xlabel(x_key.split(".")[-1])
        ax.set_ylabel(y_key.split(".")[-1])
        ax.set_title(f"{quantity.replace('_', ' ')}\n{model}", fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"median over encoder seeds; gaps: {compare[0]} minus {compare[1]} (>0: "
        f"{compare[1]} better OOD), retrieval: mixed minus same-cohort negatives",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sweep(
    summary: pd.DataFrame, keys: list[str], compare: tuple[str, str], path: Path
) -> None:
    """Lines against one sweep key, or heat maps over a grid of two."""
    import matplotlib

    matplotlib.use("Agg")
    if len(keys) == 1:
        _plot_lines(summary, keys[0], compare, path)
    else:
        _plot_grid(summary, keys, compare, path)


def write_sweep_report(
    out: Path, keys: list[str], runs: Sequence[tuple[Cell, Path]], compare: tuple[str, str]
) -> Path:
    directory = out / "sweep"
    directory.mkdir(parents=True, exist_ok=True)
    summary = summarise_sweep(runs, compare)
    summary.to_csv(directory / "summary.csv", index=False)
    controls = sweep_controls(runs, compare)
    controls.to_csv(directory / "controls.csv", index=False)
    plot_sweep(summary, keys, compare, directory / "sweep.png")
    lines = [
        f"# Sweep over {' x '.join(f'`{k}`' for k in keys)}",
        "",
        f"OOD gap = mean over target cohorts of {compare[0]} minus {compare[1]} "
        f"(positive: {compare[1]} better); ood_wilcoxon_p = Wilcoxon over all matched "
        "(encoder seed, run) pairs per target cohort; in_distribution = the heads' metric "
        "on their own cohort; cohort identifiability = cross-validated accuracy of "
        "predicting the cohort from the features; retrieval = same-patient top-1 with "
        "mixed negatives and its gap over same-cohort negatives. Median [min–max] over "
        "encoder seeds.",
        "",
        "![sweep](sweep.png)",
        "",
    ]
    if len(summary):
        grouped = summary.groupby([*keys, "quantity", "model"])["value"]
        table = pd.DataFrame(
            {
                "median": grouped.median(),
                "min": grouped.min(),
                "max": grouped.max(),
                "seeds": grouped.size(),
            }
        ).reset_index()
        lines.append("| " + " | ".join(table.columns) + " |")
        lines.append("|" + " --- |" * len(table.columns))
        for _, row in table.iterrows():
            cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.extend(_control_lines(controls, keys))
    (directory / "sweep.md").write_text("\n".join(lines) + "\n")
    return directory


def sweep_cells(sweep: Any) -> tuple[list[str], list[Cell]]:
    """The sweep's keys and every cell (one value, or one pair of values per grid cell)."""
    if sweep.by is None:
        return [sweep.key], [{sweep.key: value} for value in sweep.values]
    if sweep.by.key == sweep.key:
        raise CapeError(f"sweep.by.key must differ from sweep.key ({sweep.key!r})")
    keys = [sweep.key, sweep.by.key]
    cells = [
        dict(zip(keys, pair, strict=True))
        for pair in itertools.product(sweep.values, sweep.by.values)
    ]
    return keys, cells


def run_sweep(runner: Any, run_one: Callable[[Any, Path], Path]) -> Path:
    """Run the study once per sweep cell (each cached) and write the sweep summary."""
    from cape.study.config import StudyConfig
    from cape.study.loading import set_dotted

    config = runner.config
    compare = config.evaluate.ood.compare if config.evaluate.ood else None
    if compare is None:
        raise CapeError("a sweep needs evaluate.ood.compare: the two models whose gap it follows")
    keys, cells = sweep_cells(config.sweep)
    base = config.model_dump(mode="json")
    base["sweep"] = None
    runs = []
    for cell in cells:
        values = yaml.safe_load(yaml.safe_dump(base))
        for key, value in cell.items():
            try:
                set_dotted(values, key, value)
            except (KeyError, IndexError, TypeError, ValueError) as error:
                raise CapeError(f"sweep key {key!r}: {error}") from error
        sub_config = StudyConfig.model_validate(values)
        run_dir = runner.out / "sweep" / cell_label(cell)
        runner.log(f"== sweep {', '.join(f'{k} = {v}' for k, v in cell.items())} -> {run_dir}")
        runs.append((cell, run_one(sub_config, run_dir)))
    directory = write_sweep_report(runner.out, keys, runs, compare)
    runner.log(f"sweep summary: {directory / 'sweep.md'}")
    return runner.out
