import numpy as np
import pytest
from scipy import stats as scipy_stats

from cape.stats import (
    UndefinedMetricError,
    auroc,
    bootstrap_ci,
    bootstrap_difference_ci,
    bootstrap_indices,
    mean_absolute_error,
    mean_se_ci,
)


def test_bootstrap_indices_seeded_shape_and_range() -> None:
    first = bootstrap_indices(50, 20, seed=7)
    assert first.shape == (20, 50)
    assert np.issubdtype(first.dtype, np.integer)
    assert first.min() >= 0 and first.max() < 50
    np.testing.assert_array_equal(first, bootstrap_indices(50, 20, seed=7))
    assert not np.array_equal(first, bootstrap_indices(50, 20, seed=8))
    with pytest.raises(ValueError):
        bootstrap_indices(0, 10, seed=0)


def test_bootstrap_ci_matches_naive_percentiles() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=80)
    y_pred = y_true + rng.normal(size=80)
    indices = bootstrap_indices(80, 200, seed=1)
    result = bootstrap_ci(mean_absolute_error, y_true, y_pred, indices, confidence=0.9)
    naive = [np.mean(np.abs(y_true[i] - y_pred[i])) for i in indices]
    assert result["estimate"] == pytest.approx(np.mean(np.abs(y_true - y_pred)))
    assert result["low"] == pytest.approx(np.quantile(naive, 0.05))
    assert result["high"] == pytest.approx(np.quantile(naive, 0.95))
    assert result["n_resamples"] == 200 and result["n_skipped"] == 0


def test_bootstrap_ci_skips_and_counts_single_class_resamples() -> None:
    y_true = np.zeros(20, dtype=int)
    y_true[:2] = 1  # two positives in 20: many resamples draw none
    scores = np.linspace(0.0, 1.0, 20)[::-1]
    indices = bootstrap_indices(20, 300, seed=2)
    expected_skipped = sum(int(y_true[i].sum() in (0, i.size)) for i in indices)
    result = bootstrap_ci(auroc, y_true, scores, indices)
    assert expected_skipped > 0
    assert result["n_skipped"] == expected_skipped
    assert result["n_resamples"] == 300 - expected_skipped


def test_bootstrap_ci_all_resamples_undefined_raises() -> None:
    y_true = np.array([0, 1])
    indices = np.zeros((5, 2), dtype=int)  # every resample holds sample 0 only
    with pytest.raises(UndefinedMetricError):
        bootstrap_ci(auroc, y_true, np.array([0.1, 0.9]), indices)


def test_bootstrap_ci_rejects_out_of_range_indices() -> None:
    with pytest.raises(ValueError, match="out of range"):
        bootstrap_ci(mean_absolute_error, np.ones(3), np.ones(3), np.array([[0, 1, 3]]))


def test_paired_difference_ci_is_paired() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.normal(size=100)
    y_pred = y_true + rng.normal(size=100)
    indices = bootstrap_indices(100, 100, seed=4)
    same = bootstrap_difference_ci(mean_absolute_error, y_true, y_pred, y_pred, indices)
    assert same["estimate"] == 0.0 and same["low"] == 0.0 and same["high"] == 0.0
    worse = y_pred + 0.5 * np.sign(y_pred - y_true)  # always 0.5 further from the truth
    diff = bootstrap_difference_ci(mean_absolute_error, y_true, worse, y_pred, indices)
    assert diff["estimate"] == pytest.approx(0.5)
    assert diff["low"] == pytest.approx(0.5) and diff["high"] == pytest.approx(0.5)


def test_mean_se_ci_hand_computation() -> None:
    # 1..5: mean 3, sd sqrt(2.5), se sqrt(0.5); t(0.975, 4) = 2.776445 (textbook table).
    result = mean_se_ci(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert result["mean"] == pytest.approx(3.0)
    assert result["se"] == pytest.approx(np.sqrt(0.5))
    assert result["high"] - result["mean"] == pytest.approx(2.776445 * np.sqrt(0.5), rel=1e-6)
    assert result["df"] == 4


def test_mean_se_ci_matches_scipy_interval() -> None:
    values = np.random.default_rng(5).normal(10.0, 2.0, size=6)
    expected = scipy_stats.t.interval(0.9, df=5, loc=values.mean(), scale=scipy_stats.sem(values))
    result = mean_se_ci(values, confidence=0.9)
    assert (result["low"], result["high"]) == pytest.approx(expected)


def test_mean_se_ci_edge_cases() -> None:
    single = mean_se_ci(np.array([4.0]))
    assert single["mean"] == 4.0 and np.isnan(single["se"]) and single["note"]
    constant = mean_se_ci(np.full(4, 2.0))
    assert constant["low"] == constant["high"] == 2.0
    with pytest.raises(ValueError, match="NaN"):
        mean_se_ci(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="confidence"):
        mean_se_ci(np.ones(3), confidence=95)
