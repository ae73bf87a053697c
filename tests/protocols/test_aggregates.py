"""Means over cohorts (Fig. 2 aggregate, Table 3 mean column) against hand computations and SciPy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from cape.protocols import (
    ProtocolSettings,
    across_cohorts,
    load_feature_sets,
    read_results,
    run_composition,
    write_results,
)


def _results(setting: str, models: dict[str, str], cohorts: list[str], seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for model, baseline in models.items():
        for encoder_seed in (0, 1):
            for run in range(4):
                for cohort in cohorts:
                    train = cohort if setting == "in-distribution" else "src"
                    rows.append(
                        {
                            "protocol": "composition" if setting == "in-distribution" else "ood",
                            "model": model,
                            "baseline": baseline,
                            "encoder_seed": encoder_seed,
                            "setting": setting,
                            "train_cohort": train,
                            "test_cohort": cohort,
                            "task": "age",
                            "run": run,
                            "metric": "mae",
                            "value": float(rng.normal(10 + len(model), 1)),
                            "n": 100,
                            "n_train": 50,
                            "n_val": 10,
                        }
                    )
    return pd.DataFrame(rows)


def _per_run(results: pd.DataFrame, model: str) -> np.ndarray:
    rows = results[results["model"] == model]
    return rows.groupby(["encoder_seed", "run"])["value"].mean().to_numpy()


def test_fig2_aggregate_matches_scipy_kruskal_and_a_t_interval():
    models = {"random": "", "idb": "", "idbmask": "", "untrained": "untrained"}
    results = _results("in-distribution", models, ["a", "b", "c"])
    table = across_cohorts(results)
    assert set(table["model"]) == set(models) and (table["n_cohorts"] == 3).all()
    assert (table["train_cohort"] == "each cohort").all() and (table["cohorts"] == "a,b,c").all()
    groups = {m: _per_run(results, m) for m in ("random", "idb", "idbmask")}
    expected = scipy_stats.kruskal(*(groups[m] for m in sorted(groups)))
    for model, values in groups.items():
        row = table[table["model"] == model].iloc[0]
        assert row["test"] == "kruskal_wallis" and row["test_models"] == "idb,idbmask,random"
        assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
        assert row["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
        assert row["n_values"] == 8 and row["mean"] == pytest.approx(values.mean())
        se = values.std(ddof=1) / np.sqrt(8)
        half = scipy_stats.t.ppf(0.975, 7) * se
        assert row["se"] == pytest.approx(se)
        assert row["ci_low"] == pytest.approx(values.mean() - half)
        assert row["ci_high"] == pytest.approx(values.mean() + half)
        seeds = values.reshape(2, 4).mean(axis=1)
        assert row["seed_min"] == pytest.approx(seeds.min())
    # The untrained baseline is summarised but not in the test.
    untrained = table[table["model"] == "untrained"].iloc[0]
    assert pd.isna(untrained["p_value"]) and untrained["n_values"] == 8


def test_table3_mean_column_with_paired_wilcoxon_and_undefined_cohorts():
    results = _results(
        "out-of-distribution",
        {"random": "", "idb": "", "mean-predictor": "mean-predictor"},
        ["b", "c"],
        seed=1,
    )
    table = across_cohorts(results, compare=("random", "idb"))
    assert (table["train_cohort"] == "src").all()
    a, b = _per_run(results, "random"), _per_run(results, "idb")
    expected = scipy_stats.wilcoxon(a, b)
    for model in ("random", "idb"):
        row = table[table["model"] == model].iloc[0]
        assert row["test"] == "wilcoxon_signed_rank"
        assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert pd.isna(table.loc[table["model"] == "mean-predictor", "p_value"]).all()
    # One undefined cohort value leaves that run's mean undefined (counted), not biased.
    broken = results.copy()
    broken.loc[
        (broken["model"] == "idb")
        & (broken["run"] == 0)
        & (broken["encoder_seed"] == 0)
        & (broken["test_cohort"] == "b"),
        "value",
    ] = np.nan
    row = across_cohorts(broken).set_index("model").loc["idb"]
    assert row["n_values"] == 7 and row["n_failed"] == 1
    assert row["mean"] == pytest.approx(np.delete(b, 0).mean())


def test_composition_saves_the_aggregate_and_old_directories_still_read(
    specs, linear_head, tmp_path
):
    sets, index = load_feature_sets(specs[:3])
    settings = ProtocolSettings.for_protocol(
        "composition", runs=2, sizes=(40, 10, 10), head=linear_head, tasks=("age",)
    )
    result = run_composition(sets, index, settings, progress=False)
    pd.testing.assert_frame_equal(result.aggregate, across_cohorts(result.results))
    assert set(result.aggregate["model"]) >= {"good", "bad"}
    assert result.config["head_scaling"].startswith("plain z-scoring")
    out = write_results(result, tmp_path / "comp")
    (out / "aggregate.parquet").unlink()
    assert read_results(out).aggregate.empty
