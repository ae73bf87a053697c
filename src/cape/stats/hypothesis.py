"""Rank tests across runs: Kruskal-Wallis and the Wilcoxon signed-rank test.

Thin wrappers around SciPy that validate input, return tidy dicts that can be
written straight into a results table, and handle degenerate input (all
values equal) with ``p = 1`` and a note instead of SciPy's NaN or error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypedDict

import numpy as np
from scipy import stats as scipy_stats


class KruskalResult(TypedDict):
    """What :func:`kruskal_wallis` returns."""

    test: str
    statistic: float  # H, tie-corrected
    p_value: float
    df: int  # n_groups - 1
    n_groups: int
    group_sizes: dict[str, int]
    group_medians: dict[str, float]
    note: str


class WilcoxonResult(TypedDict):
    """What :func:`wilcoxon_signed_rank` returns."""

    test: str
    statistic: float  # SciPy's: the smaller rank sum for two-sided, else the positive one
    p_value: float
    n: int
    n_nonzero: int  # pairs with a non-zero difference (those the test ranks)
    median_difference: float  # median of x - y
    alternative: str
    zero_method: str
    note: str


def _finite_1d(name: str, values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN/inf; drop failed runs explicitly before testing")
    return array


def kruskal_wallis(groups: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> KruskalResult:
    """Kruskal-Wallis H test that all groups come from the same distribution.

    Used across pretraining cohorts (one value per run in each group). If every
    value is identical the ranks carry no information: ``statistic = 0``,
    ``p = 1`` with a note (SciPy would return NaN).

    Args:
        groups: name -> ``(n_g,)`` values, or a sequence of arrays (named "0", "1", ...).

    Returns:
        :class:`KruskalResult`.

    Raises:
        ValueError: if fewer than two groups, an empty group or non-finite values.
    """
    named = (
        {str(k): v for k, v in groups.items()}
        if isinstance(groups, Mapping)
        else {str(i): v for i, v in enumerate(groups)}
    )
    if len(named) < 2:
        raise ValueError(f"Kruskal-Wallis needs at least two groups, got {len(named)}")
    arrays = {name: _finite_1d(f"group {name!r}", values) for name, values in named.items()}
    pooled = np.concatenate(list(arrays.values()))
    note = ""
    if np.all(pooled == pooled[0]):
        statistic, p_value = 0.0, 1.0
        note = "all values are identical; no evidence of a difference"
    else:
        result = scipy_stats.kruskal(*arrays.values())
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return {
        "test": "kruskal_wallis",
        "statistic": statistic,
        "p_value": p_value,
        "df": len(arrays) - 1,
        "n_groups": len(arrays),
        "group_sizes": {name: int(a.size) for name, a in arrays.items()},
        "group_medians": {name: float(np.median(a)) for name, a in arrays.items()},
        "note": note,
    }


def wilcoxon_signed_rank(
    x: np.ndarray,
    y: np.ndarray | None = None,
    alternative: Literal["two-sided", "less", "greater"] = "two-sided",
    zero_method: Literal["wilcox", "pratt", "zsplit"] = "wilcox",
) -> WilcoxonResult:
    """Wilcoxon signed-rank test of paired values (e.g. per-run MAE, random vs IDB).

    Tests whether ``x - y`` (or ``x`` alone) is symmetric about zero. SciPy
    chooses the exact null distribution for small samples without ties or zeros
    and the normal approximation otherwise. With 10 runs the smallest possible
    two-sided p is 2/1024 ≈ 0.002. If every difference is zero: ``statistic =
    0``, ``p = 1`` with a note.

    Args:
        x: ``(n,)`` values of the first condition (or differences if ``y`` is None).
        y: ``(n,)`` paired values of the second condition.
        alternative: ``"two-sided"``, ``"less"`` or ``"greater"`` (for ``x - y``).
        zero_method: SciPy's handling of zero differences (``"wilcox"`` drops them).

    Returns:
        :class:`WilcoxonResult`.

    Raises:
        ValueError: on empty, non-finite or unpaired input.
    """
    first = _finite_1d("x", x)
    if y is None:
        differences = first
    else:
        second = _finite_1d("y", y)
        if second.shape != first.shape:
            raise ValueError(f"x {first.shape} and y {second.shape} must be paired (same length)")
        differences = first - second
    n_nonzero = int(np.count_nonzero(differences))
    note = ""
    if n_nonzero == 0:
        statistic, p_value = 0.0, 1.0
        note = "all differences are zero; no evidence of a difference"
    else:
        result = scipy_stats.wilcoxon(differences, alternative=alternative, zero_method=zero_method)
        statistic, p_value = float(result.statistic), float(result.pvalue)
        if n_nonzero < 6:
            # The exact two-sided p cannot fall below 2 / 2**n_nonzero (0.0625 for 5).
            note = f"only {n_nonzero} non-zero differences: p >= {2.0 / 2**n_nonzero:.3g} whatever the data"
    return {
        "test": "wilcoxon_signed_rank",
        "statistic": statistic,
        "p_value": p_value,
        "n": int(differences.size),
        "n_nonzero": n_nonzero,
        "median_difference": float(np.median(differences)),
        "alternative": alternative,
        "zero_method": zero_method,
        "note": note,
    }
