"""Tests computed from hand-made tables: what is paired, what is left out, degenerate cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from cape.errors import CapeError
from cape.protocols import kruskal_across_models, paired_tests


def results_table(values: dict[tuple[str, str, int, int], float], metric="mae", task="age"):
    rows = [
        {
            "model": model,
            "baseline": baseline,
            "encoder_seed": seed,
            "run": run,
            "value": value,
            "setting": "in-distribution",
            "train_cohort": "A",
            "test_cohort": "A",
            "task": task,
            "metric": metric,
        }
        for (model, baseline, seed, run), value in values.items()
    ]
    return pd.DataFrame(rows)


def test_kruskal_leaves_baselines_and_nan_out():
    rng = np.random.default_rng(0)
    values = {}
    for model, baseline in (
        ("x", ""),
        ("y", ""),
        ("untrained", "untrained"),
        ("mean-predictor", "mean-predictor"),
    ):
        for run in range(5):
            values[(model, baseline, 0, run)] = float(rng.normal(10 if model == "x" else 12))
    values[("x", "", 0, 5)] = float("nan")
    table = kruskal_across_models(results_table(values))
    assert len(table) == 1 and table.loc[0, "model_a"] == "x,y" and table.loc[0, "n"] == 10
    x = [values[("x", "", 0, r)] for r in range(5)]
    y = [values[("y", "", 0, r)] for r in range(5)]
    assert table.loc[0, "p_value"] == pytest.approx(scipy_stats.kruskal(x, y).pvalue)


def test_wilcoxon_pairs_only_matching_encoder_seed_and_run():
    values = {}
    for seed in (0, 1):
        for run in range(4):
            values[("a", "", seed, run)] = 5.0 + seed + 0.1 * run
            values[("b", "", seed, run)] = 6.0 + seed + 0.3 * run
    values[("b", "", 2, 0)] = 100.0  # no partner: left out
    table = paired_tests(results_table(values), pd.DataFrame(), "a", "b")
    pooled = table[table["scope"] == "all"].iloc[0]
    a = [values[("a", "", s, r)] for s in (0, 1) for r in range(4)]
    b = [values[("b", "", s, r)] for s in (0, 1) for r in range(4)]
    assert pooled["n"] == 8
    assert pooled["p_value"] == pytest.approx(scipy_stats.wilcoxon(a, b).pvalue)
    assert set(table["scope"]) == {"all", "encoder_seed=0", "encoder_seed=1"}


def test_wilcoxon_pairing_with_mixed_sign_differences_against_exact_counts():
    """The paired test uses a(seed, run) - b(seed, run), whatever the row order.

    Differences ``a - b`` (seed 0 runs 0-3, then seed 1 runs 0-3):
    ``+1, -2, +3, +4, -5, +6, +7, +8`` -- mixed signs, distinct sizes, so the
    signed-rank sum of the negatives is ``W = 2 + 5 = 7`` with ranks 1..8. The
    exact null counts subsets of {1..8} with sum <= 7: 1+1+1+2+2+3+4+5 = 19 of
    2**8 (for sums 0..7), so two-sided ``p = 2 * 19 / 256`` (Wilcoxon's tables:
    P(T <= 7 | n = 8) = 0.0742). Per seed: seed 0 has ``W = 2`` of ranks 1..4,
    subsets with sum <= 2: {}, {1}, {2}, ``p = 2 * 3 / 16``; seed 1 has ``W = 1``
    (the 5 is the smallest), ``p = 2 * 2 / 16``.

    Mutation caught: any mispairing (pairing rows by position or by sorted
    value, or runs of one seed with another's). With the same-sign differences
    of the test above every pairing gives the same p, so it cannot show one.
    """
    differences = [1.0, -2.0, 3.0, 4.0, -5.0, 6.0, 7.0, 8.0]
    values = {}
    for k, (seed, run) in enumerate((s, r) for s in (0, 1) for r in range(4)):
        a = 20.0 + 10.0 * seed + 3.0 * run  # well apart, so a mispairing changes every d
        values[("a", "", seed, run)] = a
        values[("b", "", seed, run)] = a - differences[k]
    values[("b", "", 2, 0)] = 100.0  # no partner: left out
    table = results_table(values).sample(frac=1.0, random_state=3)  # row order scrambled
    tests = paired_tests(table, pd.DataFrame(), "a", "b").set_index("scope")
    assert tests.loc["all", "n"] == 8
    assert tests.loc["all", "p_value"] == pytest.approx(2 * 19 / 256, rel=1e-12)
    assert tests.loc["encoder_seed=0", "p_value"] == pytest.approx(2 * 3 / 16, rel=1e-12)
    assert tests.loc["encoder_seed=1", "p_value"] == pytest.approx(2 * 2 / 16, rel=1e-12)


def test_unknown_model_or_no_shared_seed_is_an_error():
    values = {("a", "", 0, 0): 1.0, ("b", "", 1, 0): 2.0}
    with pytest.raises(CapeError, match="unknown models"):
        paired_tests(results_table(values), pd.DataFrame(), "a", "c")
    with pytest.raises(CapeError, match="none match"):
        paired_tests(results_table(values), pd.DataFrame(), "a", "b")


def test_delong_on_too_few_positives_is_recorded_not_raised():
    values = {("a", "", 0, 0): 0.75, ("b", "", 0, 0): 0.5}
    predictions = pd.DataFrame(
        {
            "model": ["a"] * 5 + ["b"] * 5,
            "encoder_seed": 0,
            "run": 0,
            "setting": "in-distribution",
            "train_cohort": "A",
            "cohort": "A",
            "task": "sex",
            "record_id": list("vwxyz") * 2,
            "y_true": [1, 0, 0, 0, 0] * 2,
            "y_pred": [0.9, 0.1, 0.95, 0.3, 0.2, 0.5, 0.4, 0.6, 0.3, 0.2],
        }
    )
    table = paired_tests(results_table(values, "auroc", "sex"), predictions, "a", "b")
    delong = table[table["test"] == "delong"].iloc[0]
    assert np.isnan(delong["p_value"]) and "at least 2 positives" in delong["note"]
    assert "delong_runs" not in set(table["test"])
