"""The Markdown summary of a label-efficiency run: one table per test cohort, then the tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from cape.label_efficiency.cells import MEAN_PREDICTOR, fraction_label
from cape.label_efficiency.config import METHOD_DESCRIPTIONS
from cape.markup import escape

METRIC_NAMES = {"mae": "MAE (years)", "auroc": "AUROC", "macro_auroc": "macro AUROC"}
LOWER_IS_BETTER = {"mae"}


def metric_name(metric: str) -> str:
    """``"mae"`` -> ``"MAE (years)"``; unknown metrics as they are."""
    return METRIC_NAMES.get(metric, metric)


def _number(value: float, spec: str = ".3f") -> str:
    if value is None or pd.isna(value) or not math.isfinite(float(value)):
        return "–"
    return format(float(value), spec)


def _cell(row: pd.Series) -> str:
    if row["n_seeds"] == 0:
        return f"failed ({row['n_failed']})"
    text = _number(row["mean"])
    if math.isfinite(float(row["ci_low"])):
        text += f" [{_number(row['ci_low'])}, {_number(row['ci_high'])}]"
    suffix = f"{row['n_seeds']} seed{'s' if row['n_seeds'] != 1 else ''}"
    if row["n_failed"]:
        suffix += f", {row['n_failed']} failed"
    return f"{text} ({suffix})"


def summary_markdown(
    summary: pd.DataFrame, tests: pd.DataFrame, methods: Sequence[str], confidence: float
) -> str:
    """Tables of mean [t-interval over seeds] per method (rows) and fraction (columns).

    Args:
        summary: :func:`cape.label_efficiency.tables.summarise`'s table.
        tests: :func:`cape.label_efficiency.tables.tests_table`'s table.
        methods: methods in display order (the mean predictor is added last).
        confidence: coverage of the intervals (for the caption).
    """
    if summary.empty:
        return "# Label efficiency\n\nNo cell has been recorded yet.\n"
    first = summary.iloc[0]
    metric = str(first["metric"])
    direction = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
    parts = [
        "# Label efficiency",
        f"Task **{escape(first['task'])}**, trained on cohort **{escape(first['train_cohort'])}**: "
        f"{metric_name(metric)} ({direction}) on each test cohort's test split, mean over "
        f"seeds with the {confidence:.0%} Student-t interval over seeds in brackets. "
        "Each seed draws its own nested patient subsample; within a seed every method saw "
        "the same training patients.",
    ]
    order = [m for m in (*methods, MEAN_PREDICTOR) if m in set(summary["method"])]
    fractions = sorted(summary["fraction"].unique())
    for cohort, block in summary.groupby("test_cohort", sort=False):
        setting = str(block["setting"].iloc[0])
        n_test = int(block["n"].max())
        header = ["method"]
        for fraction in fractions:
            patients = block.loc[block["fraction"] == fraction, "n_train_patients"].median()
            share = f"{float(fraction) * 100:g}%"
            if pd.notna(patients):
                share += f" ({patients:.0f} patient{'s' * (round(patients) != 1)})"
            header.append(share)
        lines = [
            f"## {escape(cohort)} ({setting}, {n_test} test ECGs)",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for method in order:
            cells = []
            for fraction in fractions:
                match = block[(block["method"] == method) & (block["fraction"] == fraction)]
                cells.append(_cell(match.iloc[0]) if len(match) else "")
            lines.append(f"| {escape(method)} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    parts.append(
        "Methods: "
        + "; ".join(
            f"**{m}**: {METHOD_DESCRIPTIONS.get(m, 'training mean / prevalence')}" for m in order
        )
        + "."
    )
    parts.append(_tests_markdown(tests))
    return "\n\n".join(parts) + "\n"


def _tests_markdown(tests: pd.DataFrame) -> str:
    if tests.empty:
        return "## Paired tests\n\nNone: fewer than two methods with results at any fraction."
    overall = tests[tests["scope"] == "all"]
    lines = [
        "## Paired tests",
        "Wilcoxon signed-rank over seeds (A − B, median difference) and, for AUROC, the "
        "median of the per-seed DeLong p-values on the same test ECGs (see tests.csv for "
        "each seed).",
        "",
        "| fraction | test cohort | A | B | test | n | estimate | p | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in overall.itertuples(index=False):
        lines.append(
            f"| {fraction_label(float(row.fraction))} | {escape(row.test_cohort)} | "
            f"{escape(row.model_a)} | {escape(row.model_b)} | {row.test} | {row.n} | "
            f"{_number(row.estimate)} | {_number(row.p_value, '.3g')} | {escape(row.note or '')} |"
        )
    return "\n".join(lines)
