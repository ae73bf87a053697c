"""Positive controls: could this run have seen the effects its claims are about?

Computed from the saved results, next to the claims (never instead of them):

1. **Learning control** (per pretrained model and task): do heads on the
   pretrained features beat heads on the untrained encoder's features *in
   distribution* (the heads' own cohort's test ECGs)? The unit is the encoder
   seed, each against its **untrained twin** (the same seed's initial weights):
   with two or more twinned seeds, *passes* when a one-sided one-sample t-test
   of the per-seed differences (seed's mean over head runs minus its twin's,
   signed so > 0 is better) gives p < alpha; *fails* when no seed beats its
   twin; otherwise *inconclusive*. One untrained network is one draw of a
   random feature extractor, whose quality varies with its seed: the twins
   sample that spread, and head runs of one encoder do not. Without twins
   (one seed, or a single untrained encoder) a one-sided Mann-Whitney test of
   the model's per-(seed, run) metrics against the untrained encoder's runs
   decides, with every seed's mean better required. A pretrained encoder that does not
   beat a random network in distribution has learnt nothing the heads can use,
   and an OOD verdict about it says little.
   The same question asked with **linear probes** (:mod:`cape.protocols.learning_probe`,
   declared 2026-12-03 as the lower-variance instrument): per encoder seed, the
   difference of a linear probe's test metric on the pretrained features and on
   its untrained twin's, with a 95% cluster-bootstrap interval over test patients.
   With two or more seeds the same one-sided t-test of those differences decides
   (*passes* at p < alpha); with one seed its interval must lie above 0. *fails*
   when no seed's difference is above 0, otherwise *inconclusive*.
2. **Cohort shortcut present** (the random-batch model): is there a cohort
   shortcut for IDB to remove? *yes* when every random-batch seed identifies
   the cohort above the untrained encoder's bootstrap 95% interval **and**
   every seed's same-patient retrieval gap (mixed minus same-cohort negatives)
   has its 95% interval above 0 and its value above the untrained encoder's
   gap (with several untrained twins: above the highest of them); *no* when neither holds for any seed; otherwise *partly*. Where the
   shortcut is absent, IDB has nothing to remove and claim 1 cannot speak to
   the paper's mechanism; the bundled ``controls`` study shows the instrument
   does see it in a stress regime (docs/simulator.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cape.report.collect import RunData
from cape.report.verdicts import seed_test

PASSES, FAILS, INCONCLUSIVE, NOT_MEASURED = "passes", "fails", "inconclusive", "not measured"
YES, NO, PARTLY = "yes", "no", "partly"
UNTRAINED = "untrained"
HIGHER_IS_BETTER = {"auroc", "macro_auroc", "r2", "accuracy"}


def _learning_rows(data: RunData, models: list[str], alpha: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    table = data.ood.results if data.ood is not None else pd.DataFrame()
    needed = {"setting", "train_cohort", "task", "metric", "model", "value", "encoder_seed"}
    if table.empty or not needed <= set(table.columns):
        return rows
    source = table[table["setting"] == "source"]
    for (train, task, metric), cell in source.groupby(["train_cohort", "task", "metric"]):
        untrained = cell[cell["model"] == UNTRAINED]
        baseline = untrained["value"].to_numpy(dtype=float)
        if baseline.size == 0:
            continue
        twins = untrained.groupby("encoder_seed")["value"].mean()
        higher = metric in HIGHER_IS_BETTER
        for model in models:
            mine = cell[cell["model"] == model]
            if mine.empty:
                continue
            values = mine["value"].to_numpy(dtype=float)
            seed_mean = mine.groupby("encoder_seed")["value"].mean()
            seed_means = seed_mean.to_numpy()
            reference = float(baseline.mean())
            # Each seed against its own untrained twin (its initial weights) where the
            # run has one, else against the untrained mean.
            own = np.array([float(twins.get(seed, reference)) for seed in seed_mean.index])
            better = seed_means > own if higher else seed_means < own
            twinned = [seed in twins.index for seed in seed_mean.index]
            if sum(twinned) >= 2 and len(twins) >= 2:
                gains = (seed_means - own)[twinned] * (1.0 if higher else -1.0)
                p_value = seed_test(gains, "greater")
                test = f"one-sided t-test over {len(gains)} seeds vs their twins"
                passed, n_seeds = p_value < alpha, len(gains)
            else:
                p_value = float(
                    stats.mannwhitneyu(
                        values, baseline, alternative="greater" if higher else "less"
                    ).pvalue
                )
                test = f"one-sided Mann-Whitney over {values.size} vs {baseline.size} heads"
                passed, n_seeds = p_value < alpha and bool(better.all()), 0
            if passed:
                verdict = PASSES
            elif not better.any():
                verdict = FAILS
            else:
                verdict = INCONCLUSIVE
            rows.append(
                {
                    "control": "learning",
                    "model": model,
                    "train_cohort": train,
                    "task": task,
                    "metric": metric,
                    "verdict": verdict,
                    "n_model": int(values.size),
                    "n_untrained": int(baseline.size),
                    "n_seeds": n_seeds,
                    "alpha": alpha,
                    "measured": (
                        f"{model} {values.mean():.3f} (seeds {np.round(seed_means, 3).tolist()}) "
                        f"vs untrained {reference:.3f}"
                        + (f" (twins {np.round(own, 3).tolist()})" if len(twins) > 1 else "")
                        + f", {int(better.sum())} of {len(better)} seeds better; "
                        f"{test}: p = {p_value:.3g}"
                    ),
                }
            )
    return rows


def _probe_rows(data: RunData, models: list[str], alpha: float) -> list[dict[str, Any]]:
    """Learning control from the linear-probe table (``evaluation/learning_probe``)."""
    table = data.learning_probe
    needed = {"task", "metric", "model", "encoder_seed", "difference", "ci_low", "ci_high"}
    if table is None or table.empty or not needed <= set(table.columns):
        return []
    rows: list[dict[str, Any]] = []
    for (task, metric), cell in table.groupby(["task", "metric"], sort=False):
        for model in models:
            mine = cell[cell["model"] == model].sort_values("encoder_seed")
            if mine.empty:
                continue
            difference = mine["difference"].to_numpy(dtype=float)
            low = mine["ci_low"].to_numpy(dtype=float)
            high = mine["ci_high"].to_numpy(dtype=float)
            if len(difference) >= 2:
                p_value = seed_test(difference, "greater")
                passed = p_value < alpha
            else:
                p_value, passed = None, bool((low > 0).all())
            if passed:
                verdict = PASSES
            elif not (difference > 0).any():
                verdict = FAILS
            else:
                verdict = INCONCLUSIVE
            intervals = ", ".join(
                f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                for d, lo, hi in zip(difference, low, high, strict=True)
            )
            twins = mine["twin_value"].to_numpy(dtype=float) if "twin_value" in mine else None
            values = mine["value"].to_numpy(dtype=float) if "value" in mine else None
            measured = f"linear probe, {model} minus its untrained twin (> 0: {model} better) "
            measured += f"per seed [95% patient-bootstrap CI]: {intervals}"
            if p_value is not None:
                measured += f"; one-sided t-test over {len(difference)} seeds p = {p_value:.3g}"
            if values is not None and twins is not None:
                measured += (
                    f"; {metric} {np.round(values, 3).tolist()} vs twins "
                    f"{np.round(twins, 3).tolist()}"
                )
            rows.append(
                {
                    "control": "learning-probe",
                    "model": model,
                    "train_cohort": (
                        str(mine["train_cohort"].iloc[0]) if "train_cohort" in mine else None
                    ),
                    "task": task,
                    "metric": metric,
                    "verdict": verdict,
                    "n_model": len(mine),
                    "measured": measured,
                }
            )
    return rows


def _values(column: pd.Series) -> str:
    """``0.386`` for one untrained encoder, ``[0.386, 0.371]`` for several twins."""
    values = np.round(column.to_numpy(dtype=float), 3).tolist()
    return f"{values[0]:.3f}" if len(values) == 1 else str(values)


def _shortcut_row(data: RunData, random_model: str) -> dict[str, Any]:
    row: dict[str, Any] = {"control": "shortcut", "model": random_model, "verdict": NOT_MEASURED}
    ident, retrieval = data.identifiability, data.retrieval
    if ident is None or retrieval is None or not len(retrieval):
        row["measured"] = "needs identifiability and retrieval results"
        return row
    missing = sorted(
        ({"by", "model", "accuracy"} - set(ident.columns))
        | ({"model", "gap", "gap_low"} - set(retrieval.columns))
    )
    if missing:
        row["measured"] = f"identifiability or retrieval results lack {', '.join(missing)}"
        return row
    cohort = ident[ident["by"] == "cohort"]
    untrained_ident = cohort[cohort["model"] == UNTRAINED]
    mine_ident = cohort[cohort["model"] == random_model]
    untrained_ret = retrieval[retrieval["model"] == UNTRAINED]
    mine_ret = retrieval[retrieval["model"] == random_model]
    if min(len(untrained_ident), len(mine_ident), len(untrained_ret), len(mine_ret)) == 0:
        row["measured"] = "the random-batch model or the untrained encoder has no result"
        return row
    high = "accuracy_high" if "accuracy_high" in untrained_ident else "accuracy"
    ceiling = float(untrained_ident[high].max())
    if not np.isfinite(ceiling):
        ceiling = float(untrained_ident["accuracy"].max())
    identifiable = mine_ident["accuracy"].to_numpy(dtype=float) > ceiling
    untrained_gap = float(untrained_ret["gap"].max())
    gaps = mine_ret["gap"].to_numpy(dtype=float)
    paying = (mine_ret["gap_low"].to_numpy(dtype=float) > 0) & (gaps > untrained_gap)
    if identifiable.all() and paying.all():
        row["verdict"] = YES
    elif not identifiable.any() and not paying.any():
        row["verdict"] = NO
    else:
        row["verdict"] = PARTLY
    row["measured"] = (
        f"cohort identifiability {np.round(mine_ident['accuracy'].to_numpy(), 3).tolist()} vs "
        f"untrained {_values(untrained_ident['accuracy'])} (95% CI up to {ceiling:.3f}); "
        f"retrieval gap (mixed - same-cohort negatives) {np.round(gaps, 3).tolist()} vs "
        f"untrained {_values(untrained_ret['gap'])}"
    )
    return row


def controls_from_data(
    data: RunData, random_model: str | None, pretrained: list[str], alpha: float = 0.05
) -> pd.DataFrame:
    """One row per control: ``control``, ``model``, ``verdict``, ``measured`` (+ task columns)."""
    rows = _learning_rows(data, pretrained, alpha) + _probe_rows(data, pretrained, alpha)
    if random_model is not None:
        rows.append(_shortcut_row(data, random_model))
    return pd.DataFrame(rows)


def control_lines(controls: pd.DataFrame) -> list[str]:
    """One sentence per control row, for the report and the console."""
    lines = []
    for row in controls.itertuples(index=False):
        if row.control == "learning":
            lines.append(
                f"Learning control, {row.model}, {row.task} ({row.metric}) in distribution: "
                f"{row.verdict.upper()} — {row.measured}."
            )
        elif row.control == "learning-probe":
            lines.append(
                f"Learning control (linear probe), {row.model}, {row.task} ({row.metric}) in "
                f"distribution: {row.verdict.upper()} — {row.measured}."
            )
        else:
            lines.append(
                f"Cohort shortcut in the {row.model} features: {row.verdict.upper()} — "
                f"{row.measured}."
            )
    return lines


def summarise_controls(run_dir: Any) -> list[str]:
    """The control sentences of a run directory (what ``cape demo`` prints)."""
    from cape.report.claims import compared_models
    from cape.report.collect import collect

    data = collect(run_dir)
    pair = compared_models(data)
    pretrained = [m for m in data.model_order() if m != UNTRAINED]
    return control_lines(controls_from_data(data, pair[0] if pair else None, pretrained))
