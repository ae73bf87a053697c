"""Report tables: saved results reshaped into the paper's layouts, cells as display strings.

Every function takes tables that were saved by ingest, pretraining or the
protocols, reshapes and formats them; none fits a model or reruns a test.
Only aggregates leave this module: counts, means, spreads, p-values — never
record or patient ids or dates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cape.protocols.featuresets import MEAN_PREDICTOR
from cape.protocols.results import ProtocolResult
from cape.report.collect import PretrainRun
from cape.report.verdicts import format_p

DIGITS = {"mae": 2, "auroc": 3, "macro_auroc": 3}
METRIC_NAMES = {"mae": "MAE (years)", "auroc": "AUROC", "macro_auroc": "macro AUROC"}


def fmt(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals; ``–`` for missing values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if pd.isna(value):
        return "–"
    return f"{float(value):.{digits}f}"


def fmt_p(value: Any) -> str:
    """A p-value for a table cell (``<0.001``, ``0.023``, ``–``)."""
    text = format_p(None if value is None or pd.isna(value) else float(value))
    return "–" if text == "p n/a" else text.removeprefix("p = ").replace("p < ", "<")


def mean_se(mean: Any, se: Any, digits: int) -> str:
    """``mean (SE)`` as in the paper's Table 3."""
    if mean is None or pd.isna(mean):
        return "–"
    return f"{fmt(mean, digits)} ({fmt(se, digits)})"


def spread(median: Any, low: Any, high: Any, digits: int) -> str:
    """``median [min–max]`` across encoder seeds."""
    if median is None or pd.isna(median):
        return "–"
    if pd.isna(low) or low == high:
        return fmt(median, digits)
    return f"{fmt(median, digits)} [{fmt(low, digits)}–{fmt(high, digits)}]"


# ------------------------------------------------------------------- cohort characteristics
def median_iqr(values: pd.Series, digits: int) -> str:
    """``median [Q1–Q3]`` of the known values: Table 1's one statistic for every number."""
    known = pd.to_numeric(values, errors="coerce").dropna()
    if known.empty:
        return "–"
    q1, median, q3 = known.quantile([0.25, 0.5, 0.75]).to_numpy()
    return f"{median:.{digits}f} [{q1:.{digits}f}–{q3:.{digits}f}]"


def _counts_text(text: Any, limit: int = 6) -> str:
    if not isinstance(text, str) or not text:
        return "–"
    parts = text.split("; ")
    shown = ", ".join(parts[:limit])
    return shown + (f", … ({len(parts) - limit} more)" if len(parts) > limit else "")


def cohort_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Tables 1 and 2 of the paper: one column per cohort, one row per characteristic."""
    from cape.describe import describe_cohorts

    described = describe_cohorts(manifest)
    cohort_of = manifest["cohort"].astype(str)
    per_patient = manifest.groupby([cohort_of, manifest["patient_id"].astype(str)]).size()
    ages = pd.to_numeric(manifest["age"], errors="coerce") if "age" in manifest else None
    rows: dict[str, dict[str, str]] = {}
    for cohort, row in described.iterrows():
        column: dict[str, str] = {
            "patients": f"{int(row['patients']):,}",
            "ECGs": f"{int(row['ecgs']):,}",
            "ECGs per patient, median [IQR]": median_iqr(per_patient.loc[str(cohort)], 1),
            "patients with ≥ 2 ECGs": f"{int(row['patients_with_2plus_ecgs']):,}",
        }
        if ages is not None and ages[cohort_of == str(cohort)].notna().any():
            column["age (years), median [IQR]"] = median_iqr(ages[cohort_of == str(cohort)], 1)
            column["age missing (ECGs)"] = f"{int(row.get('age_missing', 0)):,}"
            if pd.notna(row.get("age_topcoded")):
                column["age top-coded (ECGs)"] = f"{int(row['age_topcoded']):,}"
        for sex in ("male", "female"):
            if pd.notna(row.get(f"{sex}_patients")):
                column[f"{sex} patients, n (%)"] = (
                    f"{int(row[f'{sex}_patients']):,} ({row[f'{sex}_pct']:.1f}%)"
                )
        for name, key in (("ethnicity", "ethnicity_counts"), ("devices", "device_counts")):
            column[f"{name} (ECGs)"] = _counts_text(row.get(key))
        if isinstance(row.get("site_counts"), str):
            column["sites (ECGs)"] = _counts_text(row.get("site_counts"))
        rows[str(cohort)] = column
    frame = pd.DataFrame(rows).fillna("–")
    frame.index.name = "characteristic"
    return frame


def quarantine_table(quarantine: pd.DataFrame) -> pd.DataFrame:
    """Rejected inputs per cohort (rows) and reason (columns), with totals."""
    if quarantine is None or quarantine.empty:
        return pd.DataFrame()
    counts = quarantine.groupby(["cohort", "reason"]).size().unstack(fill_value=0)
    counts["total"] = counts.sum(axis=1)
    return counts.astype(int).astype(str)


# ----------------------------------------------------------------------- composition
def composition_table(result: ProtocolResult, task: str) -> pd.DataFrame:
    """Rows labelled cohorts, columns models: ``mean [95% CI]``, plus Kruskal–Wallis p."""
    summary = result.summary[
        (result.summary["task"] == task) & (result.summary["setting"] == "in-distribution")
    ]
    if summary.empty:
        return pd.DataFrame()
    digits = DIGITS.get(str(summary["metric"].iloc[0]), 3)
    table: dict[str, dict[str, str]] = {}
    for row in summary.itertuples(index=False):
        table.setdefault(str(row.model), {})[str(row.test_cohort)] = (
            f"{fmt(row.mean, digits)} [{fmt(row.ci_low, digits)}–{fmt(row.ci_high, digits)}]"
        )
    frame = pd.DataFrame(table).fillna("–")
    order = [m for m in frame.columns if m != MEAN_PREDICTOR] + (
        [MEAN_PREDICTOR] if MEAN_PREDICTOR in frame.columns else []
    )
    frame = frame[order]
    tests = result.tests
    if not tests.empty:
        kruskal = tests[(tests["test"] == "kruskal_wallis") & (tests["task"] == task)]
        p_values = dict(zip(kruskal["test_cohort"].astype(str), kruskal["p_value"], strict=True))
        frame["p Kruskal–Wallis"] = [fmt_p(p_values.get(c)) for c in frame.index]
    frame.index.name = "labelled cohort"
    return frame.sort_index()


# ------------------------------------------------------------------- identifiability
def identifiability_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, encoder seed, by): accuracy and macro AUROC with 95% CIs, chance."""
    rows = []
    for row in table.sort_values(["by", "model", "encoder_seed"]).itertuples(index=False):
        rows.append(
            {
                "identify": row.by,
                "model": row.model,
                "encoder seed": fmt(row.encoder_seed, 0),
                "accuracy [95% CI]": _with_ci(row.accuracy, row.accuracy_low, row.accuracy_high),
                "macro AUROC [95% CI]": _with_ci(
                    row.macro_auroc, row.macro_auroc_low, row.macro_auroc_high
                ),
                "chance (majority)": fmt(row.chance_majority, 3),
                "chance (1/k)": fmt(row.chance_uniform, 3),
            }
        )
    return pd.DataFrame(rows).set_index(["identify", "model", "encoder seed"])


def _with_ci(value: Any, low: Any, high: Any) -> str:
    if pd.isna(low) or pd.isna(high):
        return fmt(value, 3)
    return f"{fmt(value, 3)} [{fmt(low, 3)}–{fmt(high, 3)}]"


# ------------------------------------------------------------------------ pretraining
def pretraining_table(runs: Sequence[PretrainRun]) -> pd.DataFrame:
    """One row per pretraining run: batching, epochs, steps, first and last epoch loss, speed."""
    rows = []
    for run in runs:
        log = run.log
        epochs = log[log["kind"] == "epoch"] if "kind" in log else pd.DataFrame()
        first = epochs.iloc[0] if len(epochs) else None
        last = epochs.iloc[-1] if len(epochs) else None
        rows.append(
            {
                "run": f"{run.model}-seed{run.seed}",
                "batching": run.batching or "–",
                "epochs logged": str(len(epochs)),
                "steps": fmt(last.get("global_step"), 0) if last is not None else "–",
                "loss, first epoch": fmt(first.get("loss"), 3) if first is not None else "–",
                "loss, last epoch": fmt(last.get("loss"), 3) if last is not None else "–",
                "positive similarity, last": fmt(last.get("positive_similarity"), 3)
                if last is not None
                else "–",
                "negative similarity, last": fmt(last.get("negative_similarity"), 3)
                if last is not None
                else "–",
                "ECGs/s, last epoch": fmt(last.get("ecgs_per_s"), 0) if last is not None else "–",
            }
        )
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


# ------------------------------------------------------------------------------ claims
def _difference(mean: Any, low: Any, high: Any, digits: int) -> str:
    """``+0.26 [+0.07, +0.45]``; without an interval just the mean; ``–`` when unknown."""
    if mean is None or pd.isna(mean):
        return "–"
    text = f"{mean:+.{digits}f}"
    if low is not None and high is not None and not (pd.isna(low) or pd.isna(high)):
        text += f" [{low:+.{digits}f}, {high:+.{digits}f}]"
    return text


def claims_table(claims: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Per claim and target cohort: the per-seed spreads, p-value, its test and verdict
    (claim 1)."""
    rows = []
    for claim in claims:
        if not claim["id"].startswith("ood_") or not claim["cells"]:
            continue
        digits = DIGITS.get(claim["metric"], 3)
        models = claim["models"]
        aggregate = claim.get("aggregate") or {}
        for cell in claim["cells"]:
            low, high = cell.get("interval_low"), cell.get("interval_high")
            rows.append(
                {
                    "trained on": cell.get("train_cohort", "–"),
                    "task": f"{claim['task']}, {METRIC_NAMES.get(claim['metric'], claim['metric'])}",
                    "target cohort": cell["test_cohort"],
                    f"{models['random']} mean [seed range]": spread(
                        cell["random_mean"], cell["random_min"], cell["random_max"], digits
                    ),
                    f"{models['idb']} mean [seed range]": spread(
                        cell["idb_mean"], cell["idb_min"], cell["idb_max"], digits
                    ),
                    "difference, > 0 favours IDB [90% CI]": _difference(
                        cell.get("difference"), low, high, digits + 1
                    ),
                    "p": fmt_p(cell["p_value"]),
                    "test": cell.get("test", "Wilcoxon over heads"),
                    "verdict": cell["verdict"],
                }
            )
        if aggregate:
            cells = claim["cells"]
            rows.append(
                {
                    "trained on": cells[0].get("train_cohort", "–"),
                    "task": rows[-1]["task"],
                    "target cohort": "mean over targets (the claim's verdict)",
                    f"{models['random']} mean [seed range]": fmt(
                        float(np.mean([c["random_mean"] for c in cells])), digits
                    ),
                    f"{models['idb']} mean [seed range]": fmt(
                        float(np.mean([c["idb_mean"] for c in cells])), digits
                    ),
                    "difference, > 0 favours IDB [90% CI]": _difference(
                        aggregate["mean_difference"],
                        aggregate["interval_low"],
                        aggregate["interval_high"],
                        digits + 1,
                    ),
                    "p": fmt_p(aggregate["p_value"]),
                    "test": f"t-test over {len(aggregate['encoder_seeds'])} encoder seeds",
                    "verdict": claim["verdict"],
                }
            )
    frame = pd.DataFrame(rows)
    if len(frame) and frame["trained on"].nunique() == 1:
        frame = frame.drop(columns="trained on")
    return frame
