"""Means over cohorts: the aggregate of the paper's Fig. 2 and the mean column of its Table 3.

The composition matrix (Fig. 2) is summarised per pretrained model by its
metric averaged over the labelled cohorts; Table 3 by the out-of-distribution
metric averaged over the external (target) cohorts. Both are computed here
from the per-head results, run by run, so that their spread and tests keep
the protocol's unit of replication:

1. for every (model, encoder seed, run), the mean of the metric over the
   cell's cohorts (a value is left undefined when any cohort's is: a mean
   over fewer cohorts would not be comparable between models);
2. per model, the mean, SE and 95% t-interval of those values over all
   (encoder seed, run), with the median and range of the per-seed means;
3. composition: Kruskal–Wallis across the pretrained models (baselines left
   out), each model's group holding its per-run means (as per cohort);
   out of distribution: with ``compare``, the paired Wilcoxon signed-rank test
   of the two models on the per-run means, matched on (encoder seed, run).

Run ``r`` of one cohort and run ``r`` of another are independent draws, so
averaging them is averaging exchangeable replicates; the run index only
groups one value per cohort into each mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cape.stats import kruskal_wallis, mean_se_ci, wilcoxon_signed_rank

AGGREGATE_COLUMNS = (
    "protocol",
    "model",
    "baseline",
    "setting",
    "train_cohort",
    "task",
    "metric",
    "cohorts",
    "n_cohorts",
    "n_values",
    "n_failed",
    "mean",
    "se",
    "ci_low",
    "ci_high",
    "seed_median",
    "seed_min",
    "seed_max",
    "test",
    "test_models",
    "statistic",
    "p_value",
    "note",
)
# Settings whose cohorts are averaged: the composition cells, the OOD targets and their ceilings.
AGGREGATED_SETTINGS = ("in-distribution", "out-of-distribution", "in-cohort")
_RUN_KEYS = ["model", "baseline", "encoder_seed", "run"]


def _per_run_means(cell: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per (model, baseline, encoder seed, run): ``value`` = mean over the cohorts."""
    wide = (
        cell.groupby([*_RUN_KEYS, "test_cohort"], sort=True, observed=True)["value"]
        .first()
        .unstack("test_cohort")
    )
    cohorts = sorted(str(c) for c in wide.columns)
    values = wide.to_numpy(dtype=np.float64)
    # A mean over fewer cohorts would not be comparable with the other models' means.
    means = np.where(np.isfinite(values).all(axis=1), values.mean(axis=1), np.nan)
    return wide.index.to_frame(index=False).assign(value=means), cohorts


def _summary(values: np.ndarray, seeds: np.ndarray) -> dict[str, float | int]:
    finite = np.isfinite(values)
    row: dict[str, float | int] = {
        "n_values": int(finite.sum()),
        "n_failed": int((~finite).sum()),
        "mean": np.nan,
        "se": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "seed_median": np.nan,
        "seed_min": np.nan,
        "seed_max": np.nan,
    }
    if finite.any():
        ci = mean_se_ci(values[finite])
        row.update(mean=ci["mean"], se=ci["se"], ci_low=ci["low"], ci_high=ci["high"])
        per_seed = pd.Series(values[finite]).groupby(seeds[finite]).mean().to_numpy()
        row.update(
            seed_median=float(np.median(per_seed)),
            seed_min=float(per_seed.min()),
            seed_max=float(per_seed.max()),
        )
    return row


def _kruskal(means: pd.DataFrame) -> dict[str, object]:
    pretrained = means[(means["baseline"] == "") & np.isfinite(means["value"])]
    groups = {
        str(model): group["value"].to_numpy(dtype=np.float64)
        for model, group in pretrained.groupby("model", sort=True)
    }
    if len(groups) < 2:
        return {}
    test = kruskal_wallis(groups)
    return {
        "test": "kruskal_wallis",
        "test_models": ",".join(groups),
        "statistic": test["statistic"],
        "p_value": test["p_value"],
        "note": test["note"],
        "_models": set(groups),
    }


def _wilcoxon(means: pd.DataFrame, compare: Sequence[str]) -> dict[str, object]:
    model_a, model_b = compare
    keys = ["encoder_seed", "run"]
    a = means[means["model"] == model_a].set_index(keys)["value"]
    b = means[means["model"] == model_b].set_index(keys)["value"]
    pairs = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    if pairs.empty:
        return {}
    test = wilcoxon_signed_rank(pairs["a"].to_numpy(), pairs["b"].to_numpy())
    return {
        "test": "wilcoxon_signed_rank",
        "test_models": f"{model_a},{model_b}",
        "statistic": test["statistic"],
        "p_value": test["p_value"],
        "note": f"{len(pairs)} matched (encoder seed, run) pairs",
        "_models": {model_a, model_b},
    }


def across_cohorts(results: pd.DataFrame, compare: Sequence[str] | None = None) -> pd.DataFrame:
    """Each model's metric averaged over the cohorts of a cell (see the module docstring).

    Args:
        results: a protocol's ``results`` table (one row per head and metric).
        compare: two model names for the paired Wilcoxon test of the OOD means.

    Returns:
        One row per (setting, training cohort, task, metric, model) with the
        columns of :data:`AGGREGATE_COLUMNS`; ``cohorts`` lists the averaged
        cohorts, ``train_cohort`` is ``"each cohort"`` for the composition cells
        and ``"each target"`` for the in-cohort ceilings. ``test``,
        ``statistic`` and ``p_value`` are set on the rows of the tested models.
    """
    if results.empty:
        return pd.DataFrame(columns=list(AGGREGATE_COLUMNS))
    rows = []
    table = results[results["setting"].isin(AGGREGATED_SETTINGS)].copy()
    table["baseline"] = table["baseline"].fillna("")
    table["cell_train"] = table["train_cohort"].astype(str)
    table.loc[table["setting"] == "in-distribution", "cell_train"] = "each cohort"
    table.loc[table["setting"] == "in-cohort", "cell_train"] = "each target"
    keys = ["protocol", "setting", "cell_train", "task", "metric"]
    for key, cell in table.groupby(keys, sort=True, observed=True):
        protocol, setting, train, task, metric = key
        means, cohorts = _per_run_means(cell)
        test: dict[str, object] = {}
        if setting == "in-distribution":
            test = _kruskal(means)
        elif setting == "out-of-distribution" and compare is not None:
            present = set(means["model"])
            if all(m in present for m in compare):
                test = _wilcoxon(means, compare)
        for (model, baseline), group in means.groupby(["model", "baseline"], sort=True):
            row = {
                "protocol": protocol,
                "model": model,
                "baseline": baseline,
                "setting": setting,
                "train_cohort": train,
                "task": task,
                "metric": metric,
                "cohorts": ",".join(cohorts),
                "n_cohorts": len(cohorts),
                **_summary(
                    group["value"].to_numpy(dtype=np.float64), group["encoder_seed"].to_numpy()
                ),
            }
            if test and model in test["_models"]:  # type: ignore[operator]
                row.update({k: v for k, v in test.items() if not k.startswith("_")})
            rows.append(row)
    return pd.DataFrame(rows).reindex(columns=list(AGGREGATE_COLUMNS))
