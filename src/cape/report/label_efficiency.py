"""The report's label-efficiency section, from what ``cape label-efficiency`` saved.

Reads ``results`` (one value per method, fraction, seed and test cohort),
``summary.csv`` and ``tests.csv`` of each run (:class:`cape.report.downstream.LabelEfficiencyRun`);
nothing is refitted. Per run: the package's own figure
(:func:`cape.label_efficiency.figure.label_efficiency_figure`: metric against
the share of training patients on a log axis, one line per method, error bars
over seeds), a method × fraction table of mean ± SD over seeds with the
training patients, and the paired tests it saved. Test cohorts with fewer than
``report.min_cell_n`` test ECGs are left out of all three, with a note.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cape.protocols.featuresets import MEAN_PREDICTOR
from cape.report.context import ReportContext
from cape.report.document import Paragraph, Section, TableBlock
from cape.report.downstream import LabelEfficiencyRun
from cape.report.tables import DIGITS, METRIC_NAMES, fmt, fmt_p

LOWER_IS_BETTER = {"mae"}


def method_order(run: LabelEfficiencyRun) -> list[str]:
    """The run's methods in its configured order, others sorted, the mean predictor last."""
    configured = [str(m) for m in run.config.get("methods") or []]
    present = list(dict.fromkeys(run.results["method"].astype(str)))
    order = [m for m in configured if m in present]
    order += sorted(set(present) - set(order) - {MEAN_PREDICTOR})
    return order + ([MEAN_PREDICTOR] if MEAN_PREDICTOR in present else [])


def share(fraction: float) -> str:
    """``0.01`` -> ``"1%"``."""
    return f"{float(fraction) * 100:g}%"


def _kept_cohorts(run: LabelEfficiencyRun, min_n: int) -> tuple[list[str], list[str]]:
    """Test cohorts with at least ``min_n`` test ECGs, and those left out."""
    sizes = run.results.groupby("test_cohort", sort=False)["n"].median()
    kept = [str(c) for c, n in sizes.items() if n >= min_n]
    return kept, [str(c) for c in sizes.index if str(c) not in kept]


def efficiency_table(run: LabelEfficiencyRun, cohort: str) -> pd.DataFrame:
    """Methods (rows) × fractions (columns) of one test cohort: ``mean ± SD (k seeds)``.

    Mean and sample SD (ddof=1) of the seeds' saved values; failed cells are
    counted, not averaged. Column names give the median number of training
    patients of the fraction.
    """
    results = run.results[run.results["test_cohort"].astype(str) == cohort]
    if results.empty:
        return pd.DataFrame()
    digits = DIGITS.get(str(results["metric"].iloc[0]), 3)
    fractions = sorted(results["fraction"].astype(float).unique())
    columns = {}
    for fraction in fractions:
        patients = results.loc[results["fraction"] == fraction, "n_train_patients"]
        patients = pd.to_numeric(patients, errors="coerce").median()
        name = share(fraction)
        columns[fraction] = f"{name} ({patients:.0f} patients)" if pd.notna(patients) else name
    table: dict[str, dict[str, str]] = {}
    for method in method_order(run):
        row = {}
        for fraction in fractions:
            cell = results[(results["method"] == method) & (results["fraction"] == fraction)]
            if cell.empty:
                row[columns[fraction]] = "–"
                continue
            values = cell["value"].to_numpy(dtype=np.float64)
            finite = values[np.isfinite(values)]
            failed = int(values.size - finite.size)
            if finite.size == 0:
                text = f"failed ({failed})"
            else:
                text = fmt(finite.mean(), digits)
                if finite.size > 1:
                    text += f" ± {fmt(finite.std(ddof=1), digits)}"
                text += f" ({finite.size} seed{'s' if finite.size != 1 else ''}"
                text += f", {failed} failed)" if failed else ")"
            row[columns[fraction]] = text
        table[method] = row
    frame = pd.DataFrame(table).T
    frame.index.name = "method"
    return frame


def tests_display(run: LabelEfficiencyRun, cohorts: Sequence[str]) -> pd.DataFrame:
    """The saved across-seed tests (scope ``all``) of the kept cohorts, as display strings."""
    tests = run.tests
    if tests.empty or "scope" not in tests:
        return pd.DataFrame()
    tests = tests[(tests["scope"] == "all") & tests["test_cohort"].astype(str).isin(cohorts)]
    rows = [
        {
            "fraction": share(row.fraction),
            "test cohort": str(row.test_cohort),
            "A": str(row.model_a),
            "B": str(row.model_b),
            "test": str(row.test),
            "n": fmt(row.n, 0),
            "estimate (A − B)": fmt(row.estimate, 3),
            "p": fmt_p(row.p_value),
            "note": "" if pd.isna(row.note) else str(row.note),
        }
        for row in tests.itertuples(index=False)
    ]
    return pd.DataFrame(rows)


def _describe(run: LabelEfficiencyRun) -> str:
    results = run.results
    task = str(results["task"].iloc[0])
    metric = str(results["metric"].iloc[0])
    direction = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
    trained = ", ".join(sorted(set(results["train_cohort"].astype(str))))
    fractions = ", ".join(share(f) for f in sorted(results["fraction"].astype(float).unique()))
    seeds = results["seed"].nunique()
    return (
        f"Run {run.name}: task {task} ({METRIC_NAMES.get(metric, metric)}, {direction}), "
        f"trained on nested shares ({fractions}) of cohort {trained}'s training patients with "
        f"{seeds} seed{'s' if seeds != 1 else ''}; within a seed every method saw the same "
        "patients, and validation and test splits are never subsampled."
    )


def _run_blocks(context: ReportContext, run: LabelEfficiencyRun, section: Section) -> None:
    from cape.label_efficiency.figure import label_efficiency_figure

    min_n = context.settings.min_cell_n
    section.add(Paragraph(_describe(run)))
    kept, dropped = _kept_cohorts(run, min_n)
    if dropped:
        section.add(
            Paragraph(
                f"Test cohorts with fewer than {min_n} test ECGs are left out "
                f"(report.min_cell_n): {', '.join(dropped)}."
            )
        )
    if not kept:
        return
    order = method_order(run)
    summary = run.summary[run.summary["test_cohort"].astype(str).isin(kept)]
    results = run.results[run.results["test_cohort"].astype(str).isin(kept)]
    if len(summary):
        # The figure draws the mean predictor itself (dashed, last): not among the methods.
        methods = [m for m in order if m != MEAN_PREDICTOR]
        figure = label_efficiency_figure(summary, results, methods)
        section.add(
            context.figure(
                figure,
                f"label_efficiency_{run.name}",
                "Metric against the share of training patients (log axis), one panel per test "
                "cohort and one line per method: the mean over seeds, error bars from the "
                "lowest to the highest seed, the seeds as faint dots; the mean predictor dashed.",
                f"label efficiency of {run.name}",
            )
        )
    for cohort in kept:
        table = efficiency_table(run, cohort)
        if table.empty:
            continue
        block = run.results[run.results["test_cohort"].astype(str) == cohort]
        n_test = int(block["n"].median())
        setting = str(block["setting"].iloc[0])
        section.add(
            TableBlock(
                table,
                f"Label efficiency ({run.name}), test cohort {cohort} ({setting}, {n_test} test "
                "ECGs): mean ± SD over seeds (seeds with a value; failed cells counted); "
                "columns: share of training patients (median number of patients)",
            )
        )
    tests = tests_display(run, kept)
    if tests.empty:
        section.add(Paragraph(f"{run.name}: no paired tests were saved (tests.csv)."))
    else:
        section.add(
            TableBlock(
                tests,
                f"Paired tests ({run.name}), as saved: Wilcoxon signed-rank over seeds (pairs "
                "matched by seed: same patients) and, for AUROC, the median per-seed DeLong p; "
                "estimate A − B",
                show_index=False,
            )
        )


def label_efficiency_section(context: ReportContext) -> Section | None:
    """Label-efficiency runs (``label-efficiency/``); None when the run has none."""
    runs = context.data.label_efficiency
    if not runs:
        return None
    section = Section("Label efficiency", "label-efficiency")
    for run in runs:
        _run_blocks(context, run, section)
    return section
