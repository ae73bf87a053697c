import numpy as np
import pytest
from scipy import stats as scipy_stats

from cape.stats.ranks import midrank, midrank_rows


@pytest.mark.parametrize("n_distinct", [3, 20, 1000])
def test_midrank_matches_scipy_average_ranks(n_distinct: int) -> None:
    rng = np.random.default_rng(n_distinct)
    values = rng.integers(0, n_distinct, size=500).astype(float)  # many ties when n_distinct small
    np.testing.assert_allclose(midrank(values), scipy_stats.rankdata(values, method="average"))


def test_midrank_small_example_by_hand() -> None:
    np.testing.assert_allclose(midrank(np.array([5.0, 7.0, 7.0, 1.0])), [2.0, 3.5, 3.5, 1.0])


def test_midrank_rows_ranks_each_row() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 50)).round(1)
    expected = np.stack([scipy_stats.rankdata(row) for row in values])
    np.testing.assert_allclose(midrank_rows(values), expected)


def test_midrank_rejects_2d() -> None:
    with pytest.raises(ValueError, match="1-D"):
        midrank(np.zeros((2, 2)))
