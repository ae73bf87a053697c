import numpy as np
import pytest
from scipy import stats as scipy_stats

from cape.stats import kruskal_wallis, wilcoxon_signed_rank


def test_kruskal_hand_computed_example() -> None:
    # Ranks 1-3, 4-6, 7-9: H = 12/(9*10) * (6²+15²+24²)/3 - 3*10 = 7.2 with 2 df.
    result = kruskal_wallis({"a": [1, 2, 3], "b": [4, 5, 6], "c": [7, 8, 9]})
    assert result["statistic"] == pytest.approx(7.2)
    assert result["p_value"] == pytest.approx(np.exp(-3.6))  # chi² with 2 df: sf(x) = exp(-x/2)
    assert result["df"] == 2
    assert result["group_sizes"] == {"a": 3, "b": 3, "c": 3}
    assert result["group_medians"]["b"] == 5.0


def test_kruskal_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    groups = [rng.integers(0, 5, size=n).astype(float) for n in (6, 6, 7)]
    expected = scipy_stats.kruskal(*groups)
    result = kruskal_wallis(groups)
    assert result["statistic"] == pytest.approx(expected.statistic)
    assert result["p_value"] == pytest.approx(expected.pvalue)


def test_kruskal_degenerate_and_bad_input() -> None:
    result = kruskal_wallis([[3.0, 3.0], [3.0, 3.0, 3.0]])
    assert result["p_value"] == 1.0 and result["statistic"] == 0.0 and result["note"]
    with pytest.raises(ValueError, match="two groups"):
        kruskal_wallis([[1.0, 2.0]])
    with pytest.raises(ValueError, match="NaN"):
        kruskal_wallis([[1.0, np.nan], [2.0, 3.0]])
    with pytest.raises(ValueError, match="non-empty"):
        kruskal_wallis([[], [2.0, 3.0]])


def test_wilcoxon_exact_hand_computed() -> None:
    # Differences 1..5 and -6: W+ = 15, W- = 6. Of the 64 sign patterns of ranks 1..6,
    # 14 have a rank sum <= 6, so the exact two-sided p is 2 * 14/64.
    x = np.array([11.0, 12.0, 13.0, 14.0, 15.0, 10.0])
    y = np.array([10.0, 10.0, 10.0, 10.0, 10.0, 16.0])
    result = wilcoxon_signed_rank(x, y)
    assert result["statistic"] == pytest.approx(6.0)
    assert result["p_value"] == pytest.approx(28 / 64)
    assert result["n"] == 6 and result["n_nonzero"] == 6
    assert result["median_difference"] == pytest.approx(2.5)


def test_wilcoxon_matches_scipy_one_sided() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=10), rng.normal(size=10) + 0.5
    expected = scipy_stats.wilcoxon(x, y, alternative="less")
    result = wilcoxon_signed_rank(x, y, alternative="less")
    assert result["p_value"] == pytest.approx(expected.pvalue)
    assert result["statistic"] == pytest.approx(expected.statistic)


def test_wilcoxon_degenerate_and_bad_input() -> None:
    result = wilcoxon_signed_rank(np.ones(5), np.ones(5))
    assert result["p_value"] == 1.0 and result["n_nonzero"] == 0 and result["note"]
    few = wilcoxon_signed_rank(np.arange(1.0, 6.0))
    assert "p >=" in few["note"] and few["p_value"] >= 2 / 2**5 - 1e-12
    with pytest.raises(ValueError, match="paired"):
        wilcoxon_signed_rank(np.ones(3), np.ones(4))
