"""Report tables: saved results reshaped into the paper's layouts, cells as display strings.

Every function takes tables that were saved by ingest, pretraining or the
protocols, reshapes and formats them; none fits a model or reruns a test.
Only aggregates leave this module: counts, means, spreads, p-values — never
record or patient ids or dates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cape.protocols.featuresets import MEAN_PREDICTOR, UNTRAINED
from cape.protocols.results import ProtocolResult
from cape.report.collect import PretrainRun
from cape.report.settings import DEFAULT_MIN_CELL_N
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


# ------------------------------------------------------------------------------- OOD
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
