"""Statistical tests computed from the saved tables, so anyone can recompute them.

- :func:`kruskal_across_models` (composition matrix): per labelled cohort and
  task, Kruskal-Wallis across the pretrained models (baselines left out), each
  model's group holding its values over all (encoder seed, run).
- :func:`paired_tests` (model A vs model B, e.g. random vs IDB batching):
  pairs are matched on (encoder seed, run), the two heads having seen the same
  training sample with the same head seed and being tested on the same ECGs.

  * ``wilcoxon_signed_rank`` on the per-run metric (MAE, AUROC or macro
    AUROC), over all matched pairs (``scope = "all"``) and within each encoder
    seed (``scope = "encoder_seed=K"``);
  * for binary tasks, ``delong`` on the same test ECGs for every matched run
    (``scope = "encoder_seed=K,run=R"``, from ``predictions``), and one
    ``delong_runs`` row that gives the *median* per-run p-value with, in
    ``note``, how many runs were significant at ``alpha`` in each direction.
    Per-run DeLong p-values are not combined into one p-value: runs share the
    test ECGs, so they are not independent; the Wilcoxon test over runs is the
    test across runs.

``estimate`` is the median difference A − B (Wilcoxon) or AUROC A − AUROC B
(DeLong); ``p_value`` is two-sided.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cape.errors import CapeError
from cape.protocols.featuresets import MEAN_PREDICTOR
from cape.stats import delong_test, kruskal_wallis, wilcoxon_signed_rank

TEST_COLUMNS = (
    "test",
    "scope",
    "model_a",
    "model_b",
    "setting",
    "train_cohort",
    "test_cohort",
    "task",
    "metric",
    "encoder_seed",
    "run",
    "n",
    "statistic",
    "p_value",
    "estimate",
    "note",
)
_CELL = ["setting", "train_cohort", "test_cohort", "task", "metric"]


def _row(**values: object) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(TEST_COLUMNS)
    row.update(values)
    return row


def empty_tests() -> pd.DataFrame:
    """A tests table with no rows."""
    return pd.DataFrame(columns=list(TEST_COLUMNS))


def _finalise(rows: list[dict[str, object]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(TEST_COLUMNS))
    return table.astype({"encoder_seed": "Int64", "run": "Int64", "n": "Int64"})


def kruskal_across_models(results: pd.DataFrame) -> pd.DataFrame:
    """Kruskal-Wallis across pretrained models, per (setting, cohorts, task, metric).

    Rows whose ``baseline`` is set (untrained, mean predictor) are left out;
    undefined metric values (NaN) are dropped. Cells with fewer than two
    pretrained models get no row.
    """
    rows = []
    pretrained = results[(results["baseline"] == "") & results["value"].notna()]
    for key, cell in pretrained.groupby(_CELL, sort=True):
        groups = {
            str(model): group["value"].to_numpy(dtype=np.float64)
            for model, group in cell.groupby("model", sort=True)
        }
        if len(groups) < 2:
            continue
        test = kruskal_wallis(groups)
        medians = ", ".join(f"{k}={v:.4g}" for k, v in test["group_medians"].items())
        rows.append(
            _row(
                test="kruskal_wallis",
                scope="all",
                model_a=",".join(groups),
                **dict(zip(_CELL, key, strict=True)),
                n=int(sum(test["group_sizes"].values())),
                statistic=test["statistic"],
                p_value=test["p_value"],
                note=f"medians {medians}" + (f"; {test['note']}" if test["note"] else ""),
            )
        )
    return _finalise(rows)


def _check_models(results: pd.DataFrame, model_a: str, model_b: str) -> None:
    known = sorted(set(results["model"].astype(str)) - {MEAN_PREDICTOR})
    missing = [m for m in (model_a, model_b) if m not in known]
    if missing:
        raise CapeError(f"--compare: unknown models {missing}; the results hold {known}")
    seeds = [set(results.loc[results["model"] == m, "encoder_seed"]) for m in (model_a, model_b)]
    if not seeds[0] & seeds[1]:
        raise CapeError(
            f"--compare: {model_a} has encoder seeds {sorted(seeds[0])} and {model_b} "
            f"{sorted(seeds[1])}: none match; number them with MODEL@SEED=DIR"
        )


def _wilcoxon_rows(
    pairs: pd.DataFrame, key: tuple[object, ...], model_a: str, model_b: str
) -> list[dict[str, object]]:
    rows = []
    scopes: list[tuple[str, object, pd.DataFrame]] = [("all", None, pairs)]
    if pairs["encoder_seed"].nunique() > 1:
        scopes += [(f"encoder_seed={s}", s, g) for s, g in pairs.groupby("encoder_seed")]
    for scope, seed, group in scopes:
        test = wilcoxon_signed_rank(group["value_a"].to_numpy(), group["value_b"].to_numpy())
        rows.append(
            _row(
                test="wilcoxon_signed_rank",
                scope=scope,
                model_a=model_a,
                model_b=model_b,
                **dict(zip(_CELL, key, strict=True)),
                encoder_seed=seed,
                n=test["n"],
                statistic=test["statistic"],
                p_value=test["p_value"],
                estimate=test["median_difference"],
                note=test["note"],
            )
        )
    return rows


def _delong_rows(
    pairs: pd.DataFrame,
    key: tuple[object, ...],
    predictions: pd.DataFrame,
    model_a: str,
    model_b: str,
    alpha: float,
) -> list[dict[str, object]]:
    setting, train_cohort, test_cohort, task, _ = key
    cell = predictions[
        (predictions["setting"] == setting)
        & (predictions["train_cohort"] == train_cohort)
        & (predictions["cohort"] == test_cohort)
        & (predictions["task"] == task)
        & predictions["model"].isin([model_a, model_b])
    ]
    by_head = {k: g for k, g in cell.groupby(["model", "encoder_seed", "run"], observed=True)}
    rows: list[dict[str, object]] = []
    p_values: list[float] = []
    differences: list[float] = []
    a_better = b_better = 0
    for seed, run in pairs[["encoder_seed", "run"]].itertuples(index=False):
        a, b = by_head.get((model_a, seed, run)), by_head.get((model_b, seed, run))
        if a is None or b is None:
            continue
        merged = a.merge(b, on="record_id", suffixes=("_a", "_b"), validate="one_to_one")
        if len(merged) != len(a):
            raise CapeError(
                f"DeLong: {model_a} and {model_b} were tested on different ECGs in "
                f"{setting} {train_cohort}->{test_cohort}, encoder seed {seed}, run {run}"
            )
        try:
            test = delong_test(
                merged["y_true_a"].to_numpy(), merged["y_pred_a"], merged["y_pred_b"]
            )
        except ValueError as error:  # e.g. fewer than two ECGs of one sex among the test ECGs
            rows.append(
                _row(
                    test="delong",
                    scope=f"encoder_seed={seed},run={run}",
                    model_a=model_a,
                    model_b=model_b,
                    **dict(zip(_CELL, key, strict=True)),
                    encoder_seed=seed,
                    run=run,
                    n=len(merged),
                    statistic=np.nan,
                    p_value=np.nan,
                    estimate=np.nan,
                    note=str(error),
                )
            )
            continue
        p_values.append(test["p_value"])
        differences.append(test["difference"])
        if test["p_value"] < alpha:
            a_better += test["difference"] > 0
            b_better += test["difference"] < 0
        rows.append(
            _row(
                test="delong",
                scope=f"encoder_seed={seed},run={run}",
                model_a=model_a,
                model_b=model_b,
                **dict(zip(_CELL, key, strict=True)),
                encoder_seed=seed,
                run=run,
                n=len(merged),
                statistic=test["z"],
                p_value=test["p_value"],
                estimate=test["difference"],
                note=test["note"],
            )
        )
    if p_values:
        rows.append(
            _row(
                test="delong_runs",
                scope="all",
                model_a=model_a,
                model_b=model_b,
                **dict(zip(_CELL, key, strict=True)),
                n=len(p_values),
                p_value=float(np.median(p_values)),
                estimate=float(np.median(differences)),
                note=(
                    f"median of {len(p_values)} per-run p-values; p < {alpha:g} in "
                    f"{a_better} runs with {model_a} higher, {b_better} with {model_b} higher"
                ),
            )
        )
    return rows


def paired_tests(
    results: pd.DataFrame,
    predictions: pd.DataFrame,
    model_a: str,
    model_b: str,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Wilcoxon signed-rank over matched runs, and DeLong per run for binary tasks.

    Args:
        results: the tidy results table.
        predictions: the predictions table (for DeLong).
        model_a: first model name.
        model_b: second model name.
        alpha: level at which per-run DeLong tests are counted as significant.

    Raises:
        CapeError: an unknown model, or no encoder seed number shared by both.
    """
    _check_models(results, model_a, model_b)
    rows: list[dict[str, object]] = []
    columns = [*_CELL, "encoder_seed", "run"]
    a = results.loc[results["model"] == model_a, [*columns, "value"]]
    b = results.loc[results["model"] == model_b, [*columns, "value"]]
    matched = a.merge(b, on=columns, suffixes=("_a", "_b"))
    matched = matched[matched["value_a"].notna() & matched["value_b"].notna()]
    for key, pairs in matched.groupby(_CELL, sort=True):
        pairs = pairs.sort_values(["encoder_seed", "run"])
        rows += _wilcoxon_rows(pairs, key, model_a, model_b)
        if key[4] == "auroc":  # binary task: DeLong on the shared test ECGs
            rows += _delong_rows(pairs, key, predictions, model_a, model_b, alpha)
    return _finalise(rows)
