import numpy as np
import pytest

from cape.stats import kruskal_wallis, wilcoxon_signed_rank


def test_kruskal_hand_computed_example() -> None:
    # Ranks 1-3, 4-6, 7-9: H = 12/(9*10) * (6²+15²+24²)/3 - 3*10 = 7.2 with 2 df.
    result = kruskal_wallis({"a": [1, 2, 3], "b": [4, 5, 6], "c": [7, 8, 9]})
    assert result["statistic"] == pytest.approx(7.2)
    assert result["p_value"] == pytest.approx(np.exp(-3.6))  # chi² with 2 df: sf(x) = exp(-x/2)
    assert result["df"] == 2
    assert result["group_sizes"] == {"a": 3, "b": 3, "c": 3}
    assert result["group_medians"]["b"] == 5.0


def test_kruskal_hand_computed_example_with_ties() -> None:
    """Tie-corrected H by hand (Kruskal & Wallis 1952, Eq. 1.1 and its tie correction).

    Pooled 1, 2, 2, 2, 3, 4, 4, 5, 6: midranks 1, 3, 3, 3, 5, 6.5, 6.5, 8, 9, so the
    rank sums are a: 1+3+3 = 7, b: 3+5+6.5 = 14.5, c: 6.5+8+9 = 23.5 and
    H = 12/(9*10) * (7² + 14.5² + 23.5²)/3 - 3*10 = 91/15. Ties of size 3 and 2:
    C = 1 - (3³-3 + 2³-2)/(9³-9) = 23/24, so H/C = 2184/345; chi² with 2 df:
    p = exp(-H/C / 2). Mutation caught: a wrapper that drops the tie correction
    (H = 6.067) or ranks ties by order (the old test compared SciPy with itself).
    """
    result = kruskal_wallis({"a": [1, 2, 2], "b": [2, 3, 4], "c": [4, 5, 6]})
    assert result["statistic"] == pytest.approx(2184 / 345, rel=1e-12)
    assert result["p_value"] == pytest.approx(np.exp(-2184 / 345 / 2), rel=1e-12)
    assert result["df"] == 2


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


def test_wilcoxon_one_sided_exact_hand_computed() -> None:
    """One-sided exact p by counting sign patterns (Wilcoxon 1945; no ties, no zeros).

    ``x - y`` = 0.5, -1.2, 2.0, 3.1, 4.4: ranks 1..5, negatives' rank sum 2, positives'
    W+ = 13. Under the null W+ is symmetric on 0..15. "greater" (x - y tends to be
    positive): P(W+ >= 13) = P(W+ <= 2) = #{{}, {1}, {2}} / 32 = 3/32; "less":
    P(W+ <= 13) = 1 - P(W+ <= 1) = 30/32. Mutation caught: ``x`` and ``y`` swapped
    or the alternative passed reversed (the p-values trade places).
    """
    y = np.array([10.0, 11.0, 12.0, 13.0, 14.0])
    x = y + np.array([0.5, -1.2, 2.0, 3.1, 4.4])
    greater = wilcoxon_signed_rank(x, y, alternative="greater")
    less = wilcoxon_signed_rank(x, y, alternative="less")
    assert greater["p_value"] == pytest.approx(3 / 32, rel=1e-12)
    assert less["p_value"] == pytest.approx(30 / 32, rel=1e-12)
    assert greater["statistic"] == less["statistic"] == pytest.approx(13.0)
    two_sided = wilcoxon_signed_rank(x, y)
    assert two_sided["p_value"] == pytest.approx(2 * 3 / 32, rel=1e-12)


def test_wilcoxon_degenerate_and_bad_input() -> None:
    result = wilcoxon_signed_rank(np.ones(5), np.ones(5))
    assert result["p_value"] == 1.0 and result["n_nonzero"] == 0 and result["note"]
    few = wilcoxon_signed_rank(np.arange(1.0, 6.0))
    assert "p >=" in few["note"] and few["p_value"] >= 2 / 2**5 - 1e-12
    with pytest.raises(ValueError, match="paired"):
        wilcoxon_signed_rank(np.ones(3), np.ones(4))
