"""Sweeps: the same study at several values of one setting, and what changes with it.

``sweep: {key: simulate.artefact_strength, values: [0, 0.5, 1, 2]}`` runs one
complete (cached) study per value under ``RUN/sweep/<value>/`` and then
summarises, per value and encoder seed:

- the OOD gap of each task: mean over target cohorts of (model A - model B),
  for the study's ``evaluate.ood.compare`` pair (random vs IDB): positive age
  MAE gap = B (IDB) has lower OOD error; for AUROC the sign is flipped so that
  positive always means "B better";
- cohort identifiability (accuracy) of both models.

It writes ``sweep/summary.csv``, ``sweep/sweep.png`` and ``sweep/sweep.md``.
The question it answers: *when does IDB matter?*
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from cape.errors import CapeError

_HIGHER_IS_BETTER = {"auroc", "macro_auroc", "accuracy", "r2"}


def value_label(value: Any) -> str:
    """Directory-safe text for a sweep value."""
    return str(value).replace("/", "_").replace(" ", "")


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


def identifiability(run_dir: Path, models: Sequence[str]) -> pd.DataFrame:
    path = run_dir / "evaluation" / "identifiability.parquet"
    if not path.is_file():
        return pd.DataFrame(columns=["model", "encoder_seed", "accuracy"])
    table = pd.read_parquet(path)
    table = table[(table["target"] == "cohort") & table["model"].isin(models)]
    return table[["model", "encoder_seed", "accuracy", "chance_majority"]]


def summarise_sweep(
    key: str, runs: Sequence[tuple[Any, Path]], compare: tuple[str, str]
) -> pd.DataFrame:
    """Tidy rows (value, quantity, model/task, encoder seed, number) across the sweep."""
    model_a, model_b = compare
    rows = []
    for value, run_dir in runs:
        for _, row in ood_gaps(run_dir, model_a, model_b).iterrows():
            rows.append(
                {
                    key: value,
                    "quantity": f"ood_gap_{row['task']}_{row['metric']}",
                    "model": f"{model_a}-{model_b}",
                    "encoder_seed": row["encoder_seed"],
                    "value": row["gap"],
                }
            )
        for _, row in identifiability(run_dir, [model_a, model_b]).iterrows():
            rows.append(
                {
                    key: value,
                    "quantity": "cohort_identifiability",
                    "model": row["model"],
                    "encoder_seed": row["encoder_seed"],
                    "value": row["accuracy"],
                }
            )
    return pd.DataFrame(rows)


def plot_sweep(summary: pd.DataFrame, key: str, compare: tuple[str, str], path: Path) -> None:
    """One panel per quantity: median over encoder seeds, seeds as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    quantities = sorted(summary["quantity"].unique()) if len(summary) else []
    fig, axes = plt.subplots(
        1, max(len(quantities), 1), figsize=(4.2 * max(len(quantities), 1), 3.6), squeeze=False
    )
    for ax, quantity in zip(axes[0], quantities, strict=False):
        part = summary[summary["quantity"] == quantity]
        for model, rows in part.groupby("model"):
            rows = rows.sort_values(key)
            values = rows[key].astype(float)
            ax.scatter(values, rows["value"], s=12, alpha=0.5)
            median = rows.groupby(key)["value"].median()
            ax.plot(median.index.astype(float), median.to_numpy(), marker="o", label=str(model))
        if quantity.startswith("ood_gap"):
            ax.axhline(0.0, color="grey", lw=0.8)
            ax.set_ylabel(f"{compare[0]} minus {compare[1]} (>0: {compare[1]} better)")
        else:
            ax.set_ylabel("cohort-identification accuracy")
        ax.set_title(quantity.replace("_", " "))
        ax.set_xlabel(key)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_sweep_report(
    out: Path, key: str, runs: Sequence[tuple[Any, Path]], compare: tuple[str, str]
) -> Path:
    directory = out / "sweep"
    directory.mkdir(parents=True, exist_ok=True)
    summary = summarise_sweep(key, runs, compare)
    summary.to_csv(directory / "summary.csv", index=False)
    plot_sweep(summary, key, compare, directory / "sweep.png")
    lines = [
        f"# Sweep over `{key}`",
        "",
        f"OOD gap = mean over target cohorts of {compare[0]} minus {compare[1]} "
        f"(positive: {compare[1]} better); cohort identifiability = cross-validated "
        "accuracy of predicting the cohort from the features. Median [min–max] over "
        "encoder seeds.",
        "",
        "![sweep](sweep.png)",
        "",
    ]
    if len(summary):
        grouped = summary.groupby([key, "quantity", "model"])["value"]
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
    (directory / "sweep.md").write_text("\n".join(lines) + "\n")
    return directory


def run_sweep(runner: Any, run_one: Callable[[Any, Path], Path]) -> Path:
    """Run the study once per sweep value (each cached) and write the sweep summary."""
    from cape.study.config import StudyConfig, _set_dotted

    config = runner.config
    sweep = config.sweep
    compare = config.evaluate.ood.compare if config.evaluate.ood else None
    if compare is None:
        raise CapeError("a sweep needs evaluate.ood.compare: the two models whose gap it follows")
    base = config.model_dump(mode="json")
    base["sweep"] = None
    runs = []
    for value in sweep.values:
        values = yaml.safe_load(yaml.safe_dump(base))
        try:
            _set_dotted(values, sweep.key, value)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise CapeError(f"sweep key {sweep.key!r}: {error}") from error
        sub_config = StudyConfig.model_validate(values)
        run_dir = runner.out / "sweep" / f"{sweep.key.split('.')[-1]}={value_label(value)}"
        runner.log(f"== sweep {sweep.key} = {value} -> {run_dir}")
        runs.append((value, run_one(sub_config, run_dir)))
    directory = write_sweep_report(runner.out, sweep.key, runs, compare)
    runner.log(f"sweep summary: {directory / 'sweep.md'}")
    return runner.out
