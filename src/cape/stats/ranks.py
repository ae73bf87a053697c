"""Midranks, the building block of AUROC and DeLong's test.

Ranks here are 1-based and tied values share the mean of the ranks they
occupy ("midranks"), as in Sun & Xu (2014), *Fast implementation of DeLong's
algorithm for comparing the areas under correlated receiver operating
characteristic curves*, IEEE Signal Processing Letters 21(11):1389-1393.
"""

from __future__ import annotations

import numpy as np


def midrank(values: np.ndarray) -> np.ndarray:
    """1-based midranks of a 1-D array, in O(n log n).

    Args:
        values: ``(n,)`` array of comparable numbers.

    Returns:
        ``(n,)`` float64 array; ``out[i]`` is the rank of ``values[i]``, ties
        share the mean of the ranks they span (e.g. ``[5, 7, 7]`` -> ``[1, 2.5, 2.5]``).

    Raises:
        ValueError: if ``values`` is not 1-D.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"midrank expects a 1-D array, got shape {values.shape}")
    n = values.shape[0]
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    # A stable sort keeps equal values adjacent; each run of equal values is a tie group.
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts_group = np.empty(n, dtype=bool)
    starts_group[0] = True
    starts_group[1:] = sorted_values[1:] != sorted_values[:-1]
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], n)  # exclusive
    # Positions start..end-1 carry 1-based ranks start+1..end; their mean is (start+1+end)/2.
    group_rank = (starts + 1 + ends) / 2.0
    out[order] = group_rank[np.cumsum(starts_group) - 1]
    return out


def midrank_rows(values: np.ndarray) -> np.ndarray:
    """Midranks of every row of a 2-D array (``(k, n)`` -> ``(k, n)`` float64)."""
    values = np.atleast_2d(np.asarray(values))
    return np.stack([midrank(row) for row in values]) if values.shape[0] else values.astype(float)
