"""What this run says about the paper's two claims, computed from the saved results.

1. **IDB generalises better out of distribution**: heads on IDB features have
   a lower out-of-distribution age MAE and a higher sex AUROC than heads on
   random-batch features.
2. **Random-batch features cluster by cohort**: a linear model identifies
   the cohort from random-batch features better than from IDB features.

Verdicts are never written down in advance; the rules (also in
``docs/report.md``). The statistical unit of claim 1 is the **encoder seed**:
each seed's mean over its head runs, random and IDB paired by seed. Head runs
of one encoder are not independent replicates of pretraining, so tests over
heads understate the seed-to-seed spread (with three seeds a Wilcoxon test
over heads plus "every seed agrees" falsely rejects about one time in five;
``tests/report/test_claims.py``).

- claim 1, per target cohort and task, with at least two encoder seeds:
  *agrees* (*disagrees*) when the two-sided one-sample Student t-test of the
  per-seed differences has p < alpha and their mean favours IDB (random
  batching); otherwise *no difference* when the 90% t interval of the
  differences (two one-sided tests at alpha) lies inside the declared margin
  (``report.equivalence_margins``: 0.5 y of age MAE, 0.02 AUROC); otherwise
  *inconclusive*, with the smallest difference this many seeds would detect.
- claim 1, overall: the same rule on each seed's mean difference over all
  target cohorts (the mean column of the paper's Table 3): one test per task,
  so the verdict does not hinge on how many cohorts happen to be tested.
- claim 1 with one encoder seed per model: the saved paired Wilcoxon test over
  head runs decides the cell (p < alpha, direction of the one seed), cohorts
  are tallied (more than half, none against), and the verdict carries a caveat:
  nothing then measures the seed-to-seed spread.
- claim 2, with at least two encoder seeds: *agrees* (*disagrees*) when the
  same two-sided t-test of the per-seed differences in cohort-identification
  accuracy (random minus IDB, paired by seed) has p < alpha and random
  batching (IDB) is higher; otherwise *inconclusive*. With one encoder seed
  per model the bootstrap 95% intervals must not overlap instead, and the
  verdict carries a caveat.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cape.report.collect import (
    IDB_BATCHING,
    RunData,
    collect,
    for_training_cohort,
    training_cohorts,
)
from cape.report.settings import DEFAULT_EQUIVALENCE_MARGINS, ReportSettings
from cape.report.verdicts import (
    AGREES,
    DISAGREES,
    INCONCLUSIVE,
    NOT_MEASURED,
    equivalence_interval,
    format_p,
    overall_verdict,
    seed_test,
    seed_verdict,
)

OOD_TASKS = {"age": ("mae", False, "years"), "sex": ("auroc", True, "")}
SINGLE_SEED_CAVEAT = (
    "only one encoder seed per model: the seed-to-seed spread is unknown (the feasibility "
    "prototype saw the OOD effect in one seed and not another)"
)


def compared_models(data: RunData) -> tuple[str, str] | None:
    """``(random_model, idb_model)``: the random-batch and IDB models the claims compare.

    Taken from the pretraining configs' ``batching``; when several models of
    one kind exist, the OOD protocol's ``compare`` pair wins, else the study's
    order. Without batching information, model names containing ``random``
    and ``idb`` are used.
    """
    batching = data.batching()
    order = data.model_order()
    randoms = [m for m in order if batching.get(m) == "random"]
    idbs = [m for m in order if batching.get(m) in IDB_BATCHING]
    if not batching:
        randoms = [m for m in order if "random" in m.lower()]
        idbs = [m for m in order if "idb" in m.lower()]
    compare = None
    if data.ood is not None:
        compare = (data.ood.config.get("settings") or {}).get("compare")
    if compare:
        pair = [str(m) for m in compare]
        random_first = [m for m in pair if m in randoms]
        idb_first = [m for m in pair if m in idbs]
        randoms = random_first + [m for m in randoms if m not in random_first]
        idbs = idb_first + [m for m in idbs if m not in idb_first]
    if not randoms or not idbs:
        return None
    return randoms[0], idbs[0]


def _fmt(value: float, digits: int) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _seed_means(by_seed: pd.DataFrame, model: str, cohort: str) -> dict[int, float]:
    rows = by_seed[(by_seed["model"] == model) & (by_seed["test_cohort"] == cohort)]
    return {int(s): float(m) for s, m in zip(rows["encoder_seed"], rows["mean"], strict=True)}


def _paired_test(
    tests: pd.DataFrame, pair: tuple[str, str], cohort: str, task: str
) -> tuple[float | None, int | None]:
    """``(p_value, n_pairs)`` of the saved Wilcoxon test over all matched heads, or Nones."""
    if tests.empty or "test" not in tests:
        return None, None
    rows = tests[
        (tests["test"] == "wilcoxon_signed_rank")
        & (tests["scope"] == "all")
        & (tests["setting"] == "out-of-distribution")
        & (tests["test_cohort"] == cohort)
        & (tests["task"] == task)
        & tests["model_a"].isin(pair)
        & tests["model_b"].isin(pair)
    ]
    if rows.empty or pd.isna(rows["p_value"].iloc[0]):
        return None, None
    n = rows["n"].iloc[0]
    return float(rows["p_value"].iloc[0]), None if pd.isna(n) else int(n)


def _ood_claim(
    data: RunData,
    pair: tuple[str, str] | None,
    task: str,
    margins: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    metric, higher_better, unit = OOD_TASKS[task]
    margins = dict(DEFAULT_EQUIVALENCE_MARGINS) if margins is None else margins
    better = "higher" if higher_better else "lower"
    claim: dict[str, Any] = {
        "id": f"ood_{task}",
        "claim": f"IDB generalises better out of distribution: {better} OOD {task} "
        f"{metric.upper()} than random batching",
        "task": task,
        "metric": metric,
        "models": {"random": pair[0], "idb": pair[1]} if pair else {},
        "cells": [],
        "caveats": [],
    }
    if data.ood is None or pair is None:
        missing = "no out-of-distribution results" if data.ood is None else "no random/IDB pair"
        return dict(claim, verdict=NOT_MEASURED, measured="", reason=missing)
    alpha = float((data.ood.config.get("settings") or {}).get("alpha", 0.05))
    digits = 3 if higher_better else 2
    sign = 1.0 if higher_better else -1.0
    trains = training_cohorts(data.ood) or sorted(
        data.ood.summary_by_seed["train_cohort"].astype(str).unique()
        if "train_cohort" in data.ood.summary_by_seed
        else []
    )
    parts = []
    per_seed: dict[int, list[float]] = {}
    for train in trains:
        result = for_training_cohort(data.ood, train)
        by_seed = result.summary_by_seed
        by_seed = by_seed[
            (by_seed["setting"] == "out-of-distribution")
            & (by_seed["task"] == task)
            & (by_seed["train_cohort"] == train)
        ]
        for cohort in sorted(by_seed["test_cohort"].astype(str).unique()):
            random_means = _seed_means(by_seed, pair[0], cohort)
            idb_means = _seed_means(by_seed, pair[1], cohort)
            seeds = sorted(set(random_means) & set(idb_means))
            if not seeds:
                continue
            differences = [sign * (idb_means[s] - random_means[s]) for s in seeds]
            for s, d in zip(seeds, differences, strict=True):
                per_seed.setdefault(s, []).append(d)
            heads_p, n_pairs = _paired_test(result.tests, pair, cohort, task)
            verdict, reason, p_value = seed_verdict(
                differences, alpha, margins.get(metric), digits + 1, heads_p, n_pairs
            )
            r_values, i_values = [random_means[s] for s in seeds], [idb_means[s] for s in seeds]
            interval = equivalence_interval(differences, alpha)
            cell = {
                "train_cohort": train,
                "test_cohort": cohort,
                "n_encoder_seeds": len(seeds),
                "random_mean": float(np.mean(r_values)),
                "random_min": min(r_values),
                "random_max": max(r_values),
                "idb_mean": float(np.mean(i_values)),
                "idb_min": min(i_values),
                "idb_max": max(i_values),
                "difference": float(np.mean(differences)),
                "interval_low": interval[0],
                "interval_high": interval[1],
                "p_value": p_value,
                "test": "t-test over encoder seeds" if len(seeds) >= 2 else "Wilcoxon over heads",
                "heads_p_value": heads_p,
                "verdict": verdict,
                "reason": reason,
            }
            claim["cells"].append(cell)
            name = cohort if len(trains) == 1 else f"{train} -> {cohort}"
            parts.append(
                f"{name}: {_fmt(cell['random_mean'], digits)} "
                f"[{_fmt(cell['random_min'], digits)}–{_fmt(cell['random_max'], digits)}] vs "
                f"{_fmt(cell['idb_mean'], digits)} "
                f"[{_fmt(cell['idb_min'], digits)}–{_fmt(cell['idb_max'], digits)}] "
                f"({format_p(p_value)}, {verdict})"
            )
    train = ", ".join(trains)
    if not claim["cells"]:
        return dict(claim, verdict=NOT_MEASURED, measured="", reason="no matched encoder seeds")
    verdict, tally, aggregate = overall_verdict(
        claim["cells"], per_seed, alpha, margins.get(metric), digits + 1
    )
    claim["aggregate"] = aggregate
    if max(c["n_encoder_seeds"] for c in claim["cells"]) < 2:
        claim["caveats"].append(SINGLE_SEED_CAVEAT)
    unit_text = f" ({unit})" if unit else ""
    measured = (
        f"OOD {task} {metric.upper()}{unit_text}, heads trained on {train}; {pair[0]} vs "
        f"{pair[1]}, mean over encoder seeds [seed min–max]: " + "; ".join(parts)
    )
    return dict(claim, verdict=verdict, measured=measured, reason=tally)


def _ident_rows(table: pd.DataFrame, model: str) -> pd.DataFrame:
    return table[table["model"] == model].sort_values("encoder_seed")


def _identifiability_claim(
    data: RunData, pair: tuple[str, str] | None, alpha: float = 0.05
) -> dict[str, Any]:
    claim: dict[str, Any] = {
        "id": "identifiability",
        "claim": "random-batch features cluster by cohort: cohort identifiability is higher "
        "for random batching than for IDB",
        "models": {"random": pair[0], "idb": pair[1]} if pair else {},
        "cells": [],
        "caveats": [],
    }
    table = data.identifiability
    if table is None or pair is None:
        missing = "no identifiability results" if table is None else "no random/IDB pair"
        return dict(claim, verdict=NOT_MEASURED, measured="", reason=missing)
    table = table[table["by"] == "cohort"]
    random_rows, idb_rows = _ident_rows(table, pair[0]), _ident_rows(table, pair[1])
    if random_rows.empty or idb_rows.empty:
        return dict(claim, verdict=NOT_MEASURED, measured="", reason="a model has no result")
    r_acc = random_rows["accuracy"].to_numpy(dtype=float)
    i_acc = idb_rows["accuracy"].to_numpy(dtype=float)
    r_by_seed = dict(zip(random_rows["encoder_seed"], r_acc, strict=True))
    i_by_seed = dict(zip(idb_rows["encoder_seed"], i_acc, strict=True))
    seeds = sorted(set(r_by_seed) & set(i_by_seed))
    if len(seeds) >= 2:
        # Paired by encoder seed, positive when random batching identifies the cohort
        # better; the same seed-level t-test as claim 1.
        differences = np.array([r_by_seed[s] - i_by_seed[s] for s in seeds])
        p_value = seed_test(differences)
        mean = float(differences.mean())
        reason = (
            f"t-test over {len(seeds)} encoder seeds {format_p(p_value)}, mean difference "
            f"(random - IDB) {mean:+.3f}, {int((differences > 0).sum())} of {len(seeds)} "
            "seeds higher for random batching"
        )
        if p_value < alpha:
            verdict = AGREES if mean > 0 else DISAGREES
        else:
            verdict = INCONCLUSIVE
    else:
        claim["caveats"].append(SINGLE_SEED_CAVEAT.split(" (")[0])
        r_low = random_rows["accuracy_low"].to_numpy(dtype=float)
        r_high = random_rows["accuracy_high"].to_numpy(dtype=float)
        i_low = idb_rows["accuracy_low"].to_numpy(dtype=float)
        i_high = idb_rows["accuracy_high"].to_numpy(dtype=float)
        if not (np.isfinite(r_low).all() and np.isfinite(i_high).all()):
            verdict, reason = INCONCLUSIVE, "one encoder seed and no bootstrap intervals saved"
        elif r_low.min() > i_high.max():
            verdict, reason = AGREES, "the bootstrap 95% intervals do not overlap"
        elif r_high.max() < i_low.min():
            verdict, reason = DISAGREES, "the bootstrap 95% intervals do not overlap"
        else:
            verdict, reason = INCONCLUSIVE, "the bootstrap 95% intervals overlap"
    chance = float(np.nanmax(table["chance_majority"].to_numpy(dtype=float)))
    untrained = table[table["baseline"] == "untrained"]["accuracy"].to_numpy(dtype=float)

    def describe(values: np.ndarray) -> str:
        text = f"{np.median(values):.3f}"
        return text + (f" [{values.min():.3f}–{values.max():.3f}]" if len(values) > 1 else "")

    measured = (
        f"cohort-identification accuracy (cross-validated logistic regression), median "
        f"[seed min–max]: {pair[0]} {describe(r_acc)} vs {pair[1]} {describe(i_acc)}"
        + (f"; untrained encoder {describe(untrained)}" if untrained.size else "")
        + (f"; chance (majority cohort) {chance:.3f}" if math.isfinite(chance) else "")
    )
    claim["cells"] = [
        {"model": str(m), "encoder_seed": s, "accuracy": a, "macro_auroc": u}
        for m, s, a, u in table[["model", "encoder_seed", "accuracy", "macro_auroc"]].itertuples(
            index=False
        )
    ]
    return dict(claim, verdict=verdict, measured=measured, reason=reason)


def _alpha(data: RunData) -> float:
    """The OOD protocol's alpha (0.05 when no OOD result was saved)."""
    config = data.ood.config if data.ood is not None else {}
    return float((config.get("settings") or {}).get("alpha", 0.05))


def claims_from_data(data: RunData) -> list[dict[str, Any]]:
    """The claims of :func:`summarise_claims` from already collected run data."""
    pair = compared_models(data)
    margins = ReportSettings.from_study(data.study).equivalence_margins
    return [
        _ood_claim(data, pair, "age", margins),
        _ood_claim(data, pair, "sex", margins),
        _identifiability_claim(data, pair, _alpha(data)),
    ]


def summarise_claims(run_dir: str | Path) -> list[dict[str, Any]]:
    """Whether a run agrees with the paper's claims, one dict per claim and measurement.

    Args:
        run_dir: a study run directory.

    Returns:
        Dicts with ``id`` (``ood_age``, ``ood_sex``, ``identifiability``),
        ``claim`` (the paper's statement), ``models`` (``{"random": ..., "idb":
        ...}``), ``verdict`` (``agrees``, ``disagrees``, ``no difference``,
        ``inconclusive`` or ``not measured``), ``measured`` (the numbers, one sentence),
        ``reason`` (why that verdict), ``caveats`` and ``cells`` (per target
        cohort or per encoder seed).

    Raises:
        CapeError: ``run_dir`` does not exist.
    """
    return claims_from_data(collect(run_dir))
