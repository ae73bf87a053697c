"""The composition matrix end to end on synthetic features with known structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from cape.errors import CapeError
from cape.protocols import (
    MEAN_PREDICTOR,
    PREDICTION_COLUMNS,
    RESULT_COLUMNS,
    FeatureSpec,
    HeadSettings,
    ProtocolSettings,
    get_task,
    load_feature_sets,
    read_results,
    run_composition,
    write_results,
)

from .synthetic import FAST_HEAD, make_index, write_dir


def settings(head, **overrides):
    values = {"runs": 3, "sizes": (60, 20, 20), "head": head, "compare": ("good", "bad")}
    return ProtocolSettings.for_protocol("composition", **{**values, **overrides})


@pytest.fixture(scope="module")
def result(specs, linear_head):
    sets, index = load_feature_sets(specs)
    return run_composition(sets, index, settings(linear_head), progress=False)


def test_tables_have_one_row_per_model_seed_cohort_task_run(result):
    results = result.results
    assert list(results.columns) == list(RESULT_COLUMNS)
    assert list(result.predictions.columns) == list(PREDICTION_COLUMNS)
    # 5 feature sets + the mean predictor, 3 cohorts, 2 tasks, 3 runs.
    assert len(results) == 6 * 3 * 2 * 3
    assert set(results["setting"]) == {"in-distribution"}
    assert (results["n"] == 20).all() and (results["n_train"] == 60).all()
    assert set(results.loc[results["model"] == "untrained", "baseline"]) == {"untrained"}
    assert set(result.summary["model"]) == {"good", "bad", "untrained", MEAN_PREDICTOR}
    good = result.summary[result.summary["model"] == "good"]
    assert (good["n_encoder_seeds"] == 2).all() and (good["n_values"] == 6).all()
    assert (good["seed_min"] <= good["seed_median"]).all() and (
        good["seed_median"] <= good["seed_max"]
    ).all()


def test_heads_beat_the_mean_predictor_in_every_cohort(result):
    summary = result.summary.set_index(["model", "test_cohort", "task"])["mean"]
    for cohort in "ABC":
        assert summary["good", cohort, "age"] < summary[MEAN_PREDICTOR, cohort, "age"] - 5
        assert summary["good", cohort, "sex"] > 0.9
        assert summary[MEAN_PREDICTOR, cohort, "sex"] == 0.5


def test_metrics_and_kruskal_recompute_from_the_saved_tables(result, tmp_path):
    write_results(result, tmp_path / "out")
    saved = read_results(tmp_path / "out")
    pd.testing.assert_frame_equal(saved.results, result.results)
    keys = ["model", "encoder_seed", "setting", "train_cohort", "cohort", "task", "run"]
    results = saved.results.set_index(["model", "encoder_seed", "test_cohort", "task", "run"])
    for key, group in saved.predictions.groupby(keys, observed=True):
        model, seed, _, _, cohort, task, run = key
        value = results.loc[(model, seed, cohort, task, run), "value"]
        assert get_task(task).score(group["y_true"], group["y_pred"]) == pytest.approx(value.item())
    kruskal = saved.tests[saved.tests["test"] == "kruskal_wallis"]
    assert len(kruskal) == 6  # 3 cohorts x 2 tasks
    for row in kruskal.itertuples():
        cell = saved.results.query("test_cohort == @row.test_cohort and task == @row.task")
        groups = [cell.loc[cell["model"] == m, "value"] for m in ("bad", "good")]
        assert row.p_value == pytest.approx(scipy_stats.kruskal(*groups).pvalue)
    assert set(saved.tests["test"]) >= {"wilcoxon_signed_rank", "delong", "delong_runs"}


def test_same_seed_same_results_other_seed_other_samples(specs, linear_head):
    sets, index = load_feature_sets(specs[:1])
    first = run_composition(sets, index, settings(linear_head, compare=None), progress=False)
    again = run_composition(sets, index, settings(linear_head, compare=None), progress=False)
    other = run_composition(
        sets, index, settings(linear_head, compare=None, seed=1), progress=False
    )
    pd.testing.assert_frame_equal(first.results, again.results)
    pd.testing.assert_frame_equal(first.predictions, again.predictions)

    def run0(result):
        predictions = result.predictions
        return set(predictions.loc[predictions["run"] == 0, "record_id"])

    assert run0(first) != run0(other)


def test_mlp_heads_run_and_are_deterministic(specs):
    sets, index = load_feature_sets(specs[:1], cohorts=["A"])
    mlp = HeadSettings("mlp", FAST_HEAD)
    one = run_composition(
        sets, index, settings(mlp, runs=2, compare=None, tasks=("age",)), progress=False
    )
    two = run_composition(
        sets, index, settings(mlp, runs=2, compare=None, tasks=("age",)), progress=False
    )
    pd.testing.assert_frame_equal(one.results, two.results)
    by_model = one.results.groupby("model")["value"].mean()
    assert by_model["good"] < by_model[MEAN_PREDICTOR]


def test_missing_labels_are_excluded_and_counted(tmp_path, linear_head):
    index = make_index({"A": 90, "B": 60})
    index.loc[index.index[:10], "age"] = np.nan
    index.loc[index["cohort"] == "B", "sex"] = None
    write_dir(tmp_path / "f", index, 0.2, {}, seed=0)
    sets, aligned = load_feature_sets([FeatureSpec("m", tmp_path / "f")])
    result = run_composition(
        sets, aligned, settings(linear_head, compare=None, sizes=(40, 10, 10)), progress=False
    )
    labels = result.labels.set_index(["cohort", "task"])
    assert labels.loc[("A", "age"), "n_missing"] == 10
    assert labels.loc[("B", "sex"), "n_labelled"] == 0
    ages = result.predictions[result.predictions["task"] == "age"]
    assert not set(ages["record_id"]) & set(index["record_id"][:10])
    assert not ((result.results["task"] == "sex") & (result.results["test_cohort"] == "B")).any()
    assert any("cohort 'B' has no sex labels" in m for m in result.config["messages"])


def test_errors_for_bad_input(specs, linear_head):
    sets, index = load_feature_sets(specs[:1])
    with pytest.raises(CapeError, match=r"too few labelled ECGs.*'train' holds 108, 500 requested"):
        run_composition(
            sets,
            index,
            settings(linear_head, sizes=(500, 10, 10), strict_sizes=True, cohorts=("A",)),
            progress=False,
        )
    with pytest.raises(CapeError, match="unknown cohorts"):
        run_composition(sets, index, settings(linear_head, cohorts=("Z",)), progress=False)
    with pytest.raises(CapeError, match="unknown tasks"):
        settings(linear_head, tasks=("height",))
    with pytest.raises(CapeError, match="unknown models"):
        run_composition(sets, index, settings(linear_head, cohorts=("A",)), progress=False)
    with pytest.raises(CapeError, match="do not fit the linear head"):
        run_composition(
            sets,
            index,
            settings(HeadSettings("linear", {"max_epochs": 3}), compare=None),
            progress=False,
        )
