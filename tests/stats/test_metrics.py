import numpy as np
import pytest
from sklearn import metrics as skm

from cape.stats import (
    UndefinedMetricError,
    accuracy,
    auroc,
    macro_auroc,
    macro_auroc_report,
    mean_absolute_error,
    per_label_auroc,
    r2_score,
)


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.normal(50, 15, size=200)
    y_pred = y_true + rng.normal(0, 8, size=200)
    assert mean_absolute_error(y_true, y_pred) == pytest.approx(
        skm.mean_absolute_error(y_true, y_pred)
    )
    assert r2_score(y_true, y_pred) == pytest.approx(skm.r2_score(y_true, y_pred))


def test_r2_undefined_for_constant_target() -> None:
    with pytest.raises(UndefinedMetricError):
        r2_score(np.ones(5), np.arange(5.0))


@pytest.mark.parametrize("decimals", [None, 1, 0])  # 0 and 1 decimals create many ties
def test_auroc_matches_sklearn_with_ties(decimals: int | None) -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=300)
    scores = labels * 0.8 + rng.normal(size=300)
    if decimals is not None:
        scores = scores.round(decimals)
    assert auroc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert auroc(labels.astype(bool), scores) == pytest.approx(auroc(labels, scores))


def test_auroc_single_class_and_bad_labels() -> None:
    with pytest.raises(UndefinedMetricError, match="one class"):
        auroc(np.ones(4), np.arange(4.0))
    with pytest.raises(ValueError, match="0/1"):
        auroc(np.array([0, 1, 2]), np.arange(3.0))


def test_metrics_reject_nan_and_mismatch() -> None:
    with pytest.raises(ValueError, match="NaN"):
        mean_absolute_error(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="shape"):
        mean_absolute_error(np.ones(3), np.ones(4))


def test_macro_auroc_skips_single_class_labels() -> None:
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 2, size=(120, 4))
    y_true[:, 2] = 0  # label 2 has a single class
    y_score = y_true + rng.normal(size=(120, 4))
    valid = [0, 1, 3]
    expected = skm.roc_auc_score(y_true[:, valid], y_score[:, valid], average="macro")
    assert macro_auroc(y_true, y_score) == pytest.approx(expected)
    per_label = per_label_auroc(y_true, y_score)
    assert np.isnan(per_label[2]) and np.all(np.isfinite(per_label[valid]))
    report = macro_auroc_report(y_true, y_score, label_names=["NORM", "MI", "STTC", "CD"])
    assert report["skipped"] == ["STTC"]
    assert report["n_labels_scored"] == 3
    assert report["macro_auroc"] == pytest.approx(expected)


def test_macro_auroc_all_single_class_raises() -> None:
    with pytest.raises(UndefinedMetricError):
        macro_auroc(np.zeros((5, 2)), np.ones((5, 2)))


def test_accuracy_any_label_type() -> None:
    assert accuracy(np.array(["M", "F", "F"]), np.array(["M", "M", "F"])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy(np.array([]), np.array([]))
