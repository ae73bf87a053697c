"""Feature standardisation fitted on the training split only, with a floor on the std.

Why the floor: encoder features are post-ReLU, and some units are almost
always zero in one cohort (training std ~1e-4) while active in another. Divided
by that tiny std, an ordinary activation in a new cohort becomes tens or
hundreds of "standard deviations" and the head extrapolates wildly (the
feasibility prototype saw units 15-22 training SDs away in other cohorts
swing out-of-distribution age MAE between 13 and 28 years). So every std is
raised to at least

    floor = max(absolute_floor, relative_floor × median std of the non-constant features)

With the default ``relative_floor = 0.1`` a nearly constant unit is scaled as
if it varied a tenth as much as a typical feature. Features of one encoder
share a scale, which is what makes the median a sensible reference; set
``relative_floor = 0`` to recover plain standardisation. The same floor is used
by :func:`cape.diagnostics.feature_shift`, so a reported shift in SDs is the
shift the head sees.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_RELATIVE_FLOOR = 0.1
DEFAULT_ABSOLUTE_FLOOR = 1e-6


def floored_std(
    std: np.ndarray,
    relative_floor: float = DEFAULT_RELATIVE_FLOOR,
    absolute_floor: float = DEFAULT_ABSOLUTE_FLOOR,
) -> np.ndarray:
    """Per-feature standard deviations raised to the floor described in the module docstring.

    Args:
        std: ``(d,)`` training standard deviations (>= 0).
        relative_floor: fraction of the median std of features whose std exceeds
            ``absolute_floor``.
        absolute_floor: lowest std ever used (> 0, so constant features do not divide by 0).

    Returns:
        ``(d,)`` float64 array, ``>= std`` elementwise.

    Raises:
        ValueError: on negative floors, ``absolute_floor == 0`` or non-finite std.
    """
    std = np.asarray(std, dtype=np.float64)
    if relative_floor < 0 or absolute_floor <= 0:
        raise ValueError(
            f"need relative_floor >= 0 and absolute_floor > 0, got {relative_floor}, {absolute_floor}"
        )
    if not np.all(np.isfinite(std)) or np.any(std < 0):
        raise ValueError("std must be finite and non-negative")
    # Constant (dead) units are left out of the median: an untrained encoder can
    # have more than half of them, which would pull the reference to zero.
    varying = std[std > absolute_floor]
    reference = float(np.median(varying)) if varying.size else 0.0
    floor = max(absolute_floor, relative_floor * reference)
    return np.maximum(std, floor)


class Standardizer:
    """``(x - mean) / floored_std`` with statistics from the data passed to :meth:`fit`.

    Attributes (after ``fit``):
        mean_: ``(d,)`` training means.
        std_: ``(d,)`` training standard deviations (ddof=0) before flooring.
        scale_: ``(d,)`` the divisors actually used (``floored_std(std_)``).
        floored_: ``(d,)`` bool, features whose std was raised.
    """

    def __init__(
        self,
        relative_floor: float = DEFAULT_RELATIVE_FLOOR,
        absolute_floor: float = DEFAULT_ABSOLUTE_FLOOR,
    ) -> None:
        self.relative_floor = relative_floor
        self.absolute_floor = absolute_floor

    def fit(self, features: np.ndarray) -> Standardizer:
        """Learn mean and floored std per feature from ``(n, d)`` training features.

        Raises:
            ValueError: if ``features`` is not 2-D with at least one row.
        """
        array = np.asarray(features, dtype=np.float64)
        if array.ndim != 2 or array.shape[0] == 0:
            raise ValueError(f"features must be 2-D with at least one row, got {array.shape}")
        self.mean_ = array.mean(axis=0)
        self.std_ = array.std(axis=0)
        self.scale_ = floored_std(self.std_, self.relative_floor, self.absolute_floor)
        self.floored_ = self.scale_ > self.std_
        if self.floored_.any():
            logger.info(
                "standardisation: %d of %d features nearly constant in training; std floored to %.3g",
                int(self.floored_.sum()),
                self.floored_.size,
                float(self.scale_[self.floored_].min()),
            )
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Standardise ``(n, d)`` features; returns float32 ``(n, d)``.

        Raises:
            ValueError: if the number of features differs from the fitted one.
        """
        array = np.asarray(features, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != self.mean_.size:
            raise ValueError(f"expected (n, {self.mean_.size}) features, got shape {array.shape}")
        return ((array - self.mean_) / self.scale_).astype(np.float32)

    def fit_transform(self, features: np.ndarray) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same features."""
        return self.fit(features).transform(features)
