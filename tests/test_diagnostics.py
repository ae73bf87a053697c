import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from cape.diagnostics import (
    age_bins,
    cohort_identifiability,
    feature_shift,
    subgroup_metrics,
)
from cape.diagnostics.identifiability import _folds
from cape.heads.scaling import Standardizer
from cape.stats import auroc, mean_absolute_error


def cohorts(seed: int, offset: float, sizes=(120, 80, 60), n_features: int = 6):
    rng = np.random.default_rng(seed)
    names = np.repeat(["A", "B", "C"], sizes)
    features = rng.normal(size=(names.size, n_features))
    for k, name in enumerate(["A", "B", "C"]):
        features[names == name, k] += offset  # cohort k shifts dimension k
    return features, names


def test_identifiability_matches_sklearn_reference_on_the_same_folds() -> None:
    """Out-of-fold probabilities equal a plain sklearn loop on the same folds.

    Exact by construction, so it holds on any CPU and BLAS: the reference sees
    the same float32 inputs (``check_features`` casts to float32) standardised
    the same way (``Standardizer`` without floor, float32 out) and fits the same
    ``LogisticRegression``. A float64 reference would differ by wherever two
    lbfgs runs stop under ``tol=1e-4`` -- not a bound that a tolerance such as
    1e-6 can be derived from (one AVX-512 machine used 98 % of it). The
    standardisation itself is checked against ``StandardScaler`` in float64 below.
    """
    features, names = cohorts(0, offset=1.5)
    result = cohort_identifiability(
        features, names, n_splits=4, seed=3, n_bootstrap=200, relative_std_floor=0.0
    )
    codes = np.unique(names, return_inverse=True)[1]
    as_float32 = features.astype(np.float32)
    expected = np.zeros((names.size, 3))
    for train, test in _folds(codes, None, 4, seed=3):
        scaler = Standardizer(relative_floor=0.0).fit(as_float32[train])
        model = LogisticRegression(max_iter=1000, random_state=3)
        model.fit(scaler.transform(as_float32[train]), codes[train])
        expected[test] = model.predict_proba(scaler.transform(as_float32[test]))
        # The standardisation equals sklearn's in float64, to float64 rounding
        # (the absolute floor is far below these unit-scale stds).
        reference = StandardScaler().fit(as_float32[train].astype(np.float64))
        np.testing.assert_allclose(scaler.mean_, reference.mean_, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(scaler.scale_, reference.scale_, rtol=1e-12)
    np.testing.assert_array_equal(result.oof_probabilities, expected)
    assert result.accuracy == pytest.approx(np.mean(expected.argmax(axis=1) == codes))
    assert result.accuracy > 0.75
    assert result.accuracy_ci["low"] <= result.accuracy <= result.accuracy_ci["high"]
    assert result.class_counts == {"A": 120, "B": 80, "C": 60}
    assert result.chance_majority == pytest.approx(120 / 260)
    assert result.chance_uniform == pytest.approx(1 / 3)
    summary = result.summary()
    assert summary["n_samples"] == 260 and "oof_probabilities" not in summary


def test_identifiability_is_near_chance_without_cohort_signal() -> None:
    features, names = cohorts(1, offset=0.0)
    result = cohort_identifiability(features, names, n_splits=5, seed=0, n_bootstrap=200)
    assert result.macro_auroc < 0.62
    assert result.macro_auroc_ci["low"] < 0.5 < result.macro_auroc_ci["high"]
    assert result.accuracy < result.chance_majority + 0.1


def test_grouped_folds_keep_patients_disjoint() -> None:
    rng = np.random.default_rng(2)
    patients = np.repeat(np.arange(40), 3)
    names = np.where(patients % 2 == 0, "A", "B")
    codes = np.unique(names, return_inverse=True)[1]
    for train, test in _folds(codes, patients, 4, seed=0):
        assert not set(patients[train]) & set(patients[test])
    features = rng.normal(size=(patients.size, 4))
    result = cohort_identifiability(features, names, groups=patients, n_splits=4, n_bootstrap=50)
    assert result.grouped


def test_identifiability_rejects_thin_classes() -> None:
    features, names = cohorts(3, offset=1.0, sizes=(50, 50, 3))
    with pytest.raises(ValueError, match="fewer samples than n_splits"):
        cohort_identifiability(features, names, n_splits=5)
    with pytest.raises(ValueError, match="two classes"):
        cohort_identifiability(features, np.full(len(names), "A"))


def test_feature_shift_in_floored_training_sds() -> None:
    rng = np.random.default_rng(4)
    train = rng.normal(size=(500, 4))
    train[:, 3] = 1e-5 * rng.normal(size=500)  # nearly constant in training
    near = rng.normal(size=(300, 4)) + np.array([0.5, 0.0, 0.0, 0.0])
    far = rng.normal(size=(200, 4)) + np.array([0.0, 7.0, 0.0, 0.5])
    result = feature_shift(train, {"near": near, "far": far}, dimension_names=["a", "b", "c", "d"])
    table = result.table.set_index(["target_cohort", "dimension"])
    expected_b = (far[:, 1].mean() - train[:, 1].mean()) / train[:, 1].std()
    assert table.loc[("far", "b"), "shift"] == pytest.approx(expected_b, rel=1e-6)
    assert table.loc[("far", "d"), "floored"]
    floor = 0.1 * np.median(train.std(axis=0))  # all four stds exceed the 1e-6 absolute floor
    assert table.loc[("far", "d"), "shift"] == pytest.approx(
        (far[:, 3].mean() - train[:, 3].mean()) / floor, rel=1e-4
    )
    summary = result.summary.set_index("target_cohort")
    assert summary.loc["near", "n_beyond_threshold"] == 0
    assert summary.loc["far", "max_abs_shift"] == pytest.approx(
        np.abs(table.loc["far", "shift"]).max()
    )
    assert (
        summary.loc["far", "n_beyond_threshold"]
        == int((np.abs(table.loc["far", "shift"]) > 5).sum())
        >= 1
    )
    assert summary.loc["far", "n_floored"] == 1
    assert len(result.table) == 8


def test_age_bins() -> None:
    bins = age_bins(np.array([23.0, 49.9, 50.0, np.nan, 95.0]), width=10, top=90)
    assert list(bins.astype(object)[:3]) == ["20-29", "40-49", "50-59"]
    assert pd.isna(bins[3]) and bins[4] == "90+"
    assert list(bins.categories) == ["20-29", "30-39", "40-49", "50-59", "90+"]
    assert bins.ordered


def test_subgroup_metrics_match_a_manual_groupby() -> None:
    rng = np.random.default_rng(5)
    n = 200
    age = rng.uniform(20, 80, size=n)
    pred = age + rng.normal(0, 5, size=n)
    groups = pd.DataFrame(
        {
            "sex": rng.choice(["F", "M"], size=n),
            "age_bin": age_bins(age),
            "device": rng.choice(["x", "y", None], size=n),
        }
    )
    rows = subgroup_metrics(age, pred, mean_absolute_error, groups)
    assert rows.iloc[0].tolist()[:3] == ["all", "all", n]
    for sex in ("F", "M"):
        mask = (groups["sex"] == sex).to_numpy()
        row = rows[(rows.variable == "sex") & (rows.group == sex)].iloc[0]
        assert row.n == mask.sum()
        assert row.value == pytest.approx(np.mean(np.abs(age[mask] - pred[mask])))
    assert rows[rows.variable == "age_bin"].group.tolist() == list(groups["age_bin"].cat.categories)
    missing = rows[(rows.variable == "device") & (rows.group == "missing")].iloc[0]
    assert missing.n == groups["device"].isna().sum()


def test_subgroup_metrics_undefined_and_small_groups() -> None:
    y_true = np.array([0, 1, 0, 1, 1, 1])
    y_score = np.array([0.1, 0.9, 0.4, 0.6, 0.7, 0.8])
    groups = pd.DataFrame({"site": ["a", "a", "a", "a", "b", "b"]})
    rows = subgroup_metrics(y_true, y_score, auroc, groups).set_index("group")
    assert rows.loc["a", "value"] == pytest.approx(1.0)
    assert np.isnan(rows.loc["b", "value"]) and "one class" in rows.loc["b", "note"]
    small = subgroup_metrics(y_true, y_score, auroc, groups, min_count=3).set_index("group")
    assert np.isnan(small.loc["b", "value"]) and "fewer than 3" in small.loc["b", "note"]
    with pytest.raises(ValueError, match="lengths"):
        subgroup_metrics(y_true, y_score[:3], auroc, groups)
