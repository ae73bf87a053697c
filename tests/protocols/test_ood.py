"""The out-of-distribution protocol: baselines, induced shift, paired tests from saved predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as scipy_stats

from cape.diagnostics import feature_shift
from cape.embed import load_features
from cape.errors import CapeError
from cape.protocols import (
    MEAN_PREDICTOR,
    FeatureSpec,
    ProtocolSettings,
    get_task,
    load_feature_sets,
    read_results,
    run_ood,
    write_results,
)
from cape.stats import delong_test

from .synthetic import make_index, write_dir


def settings(head, **overrides):
    values = {
        "runs": 3,
        "train_cohort": "A",
        "head": head,
        "compare": ("good", "bad"),
        "ood_test_n": 20,
    }
    return ProtocolSettings.for_protocol("ood", **{**values, **overrides})


@pytest.fixture(scope="module")
def saved(specs, linear_head, tmp_path_factory):
    sets, index = load_feature_sets(specs[:4])  # good and bad, two encoder seeds each
    out = tmp_path_factory.mktemp("ood") / "results"
    # Subgroup metrics cost ~20 ms per head; they get their own smaller test.
    write_results(run_ood(sets, index, settings(linear_head, subgroups=False), progress=False), out)
    return read_results(out)


def test_every_setting_and_baseline_is_present(saved):
    results = saved.results
    assert set(results["setting"]) == {"source", "out-of-distribution", "in-cohort"}
    ood = results[results["setting"] == "out-of-distribution"]
    assert set(ood["test_cohort"]) == {"B", "C"} and set(ood["train_cohort"]) == {"A"}
    ceiling = results[results["setting"] == "in-cohort"]
    assert (ceiling["train_cohort"] == ceiling["test_cohort"]).all()
    assert set(results["model"]) == {"good", "bad", MEAN_PREDICTOR}
    # source runs use the whole 60/20/20 split of A (90 patients x 2 ECGs)
    source = results[results["setting"] == "source"]
    assert (source["n_train"] == 108).all() and (source["n"] == 36).all()
    assert saved.config["train_cohort"] == "A"


def test_same_target_ecgs_for_every_model_seed_and_run(saved):
    ood = saved.predictions[
        (saved.predictions["setting"] != "source") & (saved.predictions["task"] == "age")
    ]
    for _, group in ood.groupby("cohort", observed=True):
        sets = group.groupby(["model", "encoder_seed", "run", "setting"], observed=True)[
            "record_id"
        ].apply(frozenset)
        assert sets.nunique() == 1 and len(next(iter(sets))) == 20


def test_induced_shift_makes_ood_worse_than_in_cohort(saved):
    mae = saved.summary[(saved.summary["task"] == "age")].set_index(
        ["model", "setting", "test_cohort"]
    )["mean"]
    assert mae["good", "out-of-distribution", "B"] > 2 * mae["good", "in-cohort", "B"]
    assert mae["good", "out-of-distribution", "C"] < 2 * mae["good", "in-cohort", "C"]
    assert mae["good", "in-cohort", "B"] < mae[MEAN_PREDICTOR, "in-cohort", "B"]


def test_wilcoxon_matches_scipy_on_metrics_recomputed_from_predictions(saved):
    predictions = saved.predictions
    rows = saved.tests[
        (saved.tests["test"] == "wilcoxon_signed_rank") & (saved.tests["scope"] == "all")
    ]
    assert len(rows) == 2 * 5  # 2 tasks x (source A, OOD B, OOD C, in-cohort B, in-cohort C)
    for row in rows.itertuples():
        cell = predictions[
            (predictions["setting"] == row.setting)
            & (predictions["cohort"] == row.test_cohort)
            & (predictions["task"] == row.task)
        ]
        per_run = {
            model: [
                get_task(row.task).score(g["y_true"].to_numpy(), g["y_pred"].to_numpy())
                for _, g in cell[cell["model"] == model].groupby(
                    ["encoder_seed", "run"], observed=True
                )
            ]
            for model in ("good", "bad")
        }
        expected = scipy_stats.wilcoxon(per_run["good"], per_run["bad"])
        assert row.p_value == pytest.approx(expected.pvalue)
        assert row.n == 6  # 2 encoder seeds x 3 runs


def test_delong_matches_cape_stats_on_the_saved_predictions(saved):
    predictions = saved.predictions
    rows = saved.tests[saved.tests["test"] == "delong"]
    assert len(rows) == 5 * 6
    for row in rows.itertuples():
        head = predictions[
            (predictions["encoder_seed"] == row.encoder_seed)
            & (predictions["run"] == row.run)
            & (predictions["setting"] == row.setting)
            & (predictions["cohort"] == row.test_cohort)
            & (predictions["task"] == "sex")
        ].sort_values("record_id")
        good, bad = head[head["model"] == "good"], head[head["model"] == "bad"]
        expected = delong_test(
            good["y_true"].to_numpy(), good["y_pred"].to_numpy(), bad["y_pred"].to_numpy()
        )
        assert row.p_value == pytest.approx(expected["p_value"])
    summary = saved.tests[saved.tests["test"] == "delong_runs"]
    for row in summary.itertuples():
        per_run = rows[(rows["setting"] == row.setting) & (rows["test_cohort"] == row.test_cohort)]
        assert row.p_value == pytest.approx(np.median(per_run["p_value"]))


def test_feature_shift_matches_a_direct_computation(saved, feature_root):
    shift = saved.shift.set_index(["model", "encoder_seed", "target_cohort"])
    assert len(shift) == 4 * 2
    # The induced shift is on dimension 0; recompute it from the features directly.
    features, index = load_features(feature_root / "good0")
    train = features[((index["cohort"] == "A") & (index["split"] == "train")).to_numpy()]
    target = features[((index["cohort"] == "B") & (index["split"] == "test")).to_numpy()]
    expected = feature_shift(train, {"B": target}).summary.iloc[0]
    assert shift.loc[("good", 0, "B"), "dimension_of_max"] == 0 == expected["dimension_of_max"]
    assert shift.loc[("good", 0, "B"), "max_abs_shift"] == pytest.approx(expected["max_abs_shift"])
    assert saved.subgroups.empty


def test_subgroup_metrics_per_head(specs, linear_head):
    sets, index = load_feature_sets(specs[:1])
    result = run_ood(
        sets, index, settings(linear_head, compare=None, runs=1, tasks=("age",)), progress=False
    )
    subgroups = result.subgroups
    assert set(subgroups["variable"]) == {"all", "sex", "age_bin", "device"}
    assert (
        len(subgroups.groupby(["model", "setting", "test_cohort"])) == 2 * 5
    )  # good + mean predictor
    head = subgroups[
        (subgroups["model"] == "good")
        & (subgroups["setting"] == "out-of-distribution")
        & (subgroups["test_cohort"] == "B")
    ]
    total = head.loc[head["variable"] == "all", "n"].item()
    assert head.loc[head["variable"] == "sex", "n"].sum() == total == 20
    assert head.loc[head["variable"] == "age_bin", "n"].sum() == total
    overall = result.results.query(
        "model == 'good' and setting == 'out-of-distribution' and test_cohort == 'B'"
    )["value"].item()
    assert head.loc[head["variable"] == "all", "value"].item() == pytest.approx(overall)
    predictions = result.predictions
    male = predictions[
        (predictions["model"] == "good")
        & (predictions["setting"] == "out-of-distribution")
        & (predictions["cohort"] == "B")
    ].merge(index[["cohort", "record_id", "sex"]])
    male = male[male["sex"] == "M"]
    value = head.loc[(head["variable"] == "sex") & (head["group"] == "M"), "value"].item()
    assert value == pytest.approx(np.mean(np.abs(male["y_true"] - male["y_pred"])))


def test_superclass_task_with_long_predictions(tmp_path, linear_head):
    index = make_index({"A": 60, "B": 40})
    rng = np.random.default_rng(0)
    codes = ["NORM", "MI", "STTC"]
    index["superclasses"] = [
        list(rng.choice(codes, size=rng.integers(1, 3), replace=False)) for _ in range(len(index))
    ]
    write_dir(tmp_path / "f", index, 0.5, {}, seed=0)
    sets, aligned = load_feature_sets([FeatureSpec("m", tmp_path / "f")])
    result = run_ood(
        sets,
        aligned,
        settings(linear_head, compare=None, tasks=("superclass",), runs=2),
        progress=False,
    )
    predictions = result.predictions
    assert set(predictions["label"]) == {"MI", "NORM", "STTC"}
    row = result.results.iloc[0]
    head = predictions[
        (predictions["model"] == row["model"])
        & (predictions["run"] == row["run"])
        & (predictions["setting"] == row["setting"])
        & (predictions["cohort"] == row["test_cohort"])
    ]
    wide_true = head.pivot(index="record_id", columns="label", values="y_true")
    wide_pred = head.pivot(index="record_id", columns="label", values="y_pred")
    assert row["metric"] == "macro_auroc"
    assert get_task("superclass").score(
        wide_true.to_numpy(), wide_pred.to_numpy()
    ) == pytest.approx(row["value"])


def test_determinism(specs, linear_head):
    sets, index = load_feature_sets(specs[:1])
    quick = {"compare": None, "subgroups": False, "runs": 2}
    one = run_ood(sets, index, settings(linear_head, **quick), progress=False)
    two = run_ood(sets, index, settings(linear_head, **quick), progress=False)
    pd.testing.assert_frame_equal(one.results, two.results)
    pd.testing.assert_frame_equal(one.predictions, two.predictions)


def test_errors_for_bad_input(specs, linear_head):
    sets, index = load_feature_sets(specs[:1])
    with pytest.raises(CapeError, match="test cohort 'A' is the training cohort"):
        run_ood(sets, index, settings(linear_head, cohorts=("A", "B")), progress=False)
    with pytest.raises(CapeError, match="needs a training cohort"):
        run_ood(sets, index, settings(linear_head, train_cohort=None), progress=False)
    with pytest.raises(CapeError, match="unknown cohorts"):
        run_ood(sets, index, settings(linear_head, train_cohort="Z"), progress=False)
    with pytest.raises(CapeError, match=r"unknown models \['bad'\]"):
        run_ood(sets, index, settings(linear_head, runs=1), progress=False)


def test_leak_warning_lands_in_the_config(tmp_path, linear_head):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"cohorts": None, "exclude_splits": []}))
    write_dir(tmp_path / "f", make_index({"A": 40, "B": 30}), 0.5, {}, seed=0, checkpoint=str(run))
    sets, index = load_feature_sets([FeatureSpec("m", tmp_path / "f")])
    options = {"compare": None, "runs": 1, "subgroups": False}
    result = run_ood(
        sets, index, settings(linear_head, ood_target_pool="all", **options), progress=False
    )
    assert (
        len(result.config["warnings"]) == 1 and "exclude_splits=[]" in result.config["warnings"][0]
    )
    # The default pool leaves out what pretraining saw: here every split of B.
    with pytest.raises(CapeError, match="no unseen ECG"):
        run_ood(sets, index, settings(linear_head, **options), progress=False)
