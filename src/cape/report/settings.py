"""The report's own thresholds: small-cell suppression and the sanity checks.

Set them, in increasing priority, in the study file's ``report:`` section
(``min_cell_n``, ``signal_share``; read back from the run's ``study.yaml``,
so ``cape report`` honours them too), as :func:`cape.report.write_report`
arguments, or on the ``cape report`` command line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from cape.errors import CapeError

DEFAULT_MIN_CELL_N = 20
DEFAULT_SIGNAL_SHARE = 0.5
# Equivalence margins of claim 1 ("no difference" verdicts), per metric, declared
# 2026-12-03 before any run was judged with them: half a year of age MAE is below the
# spread between untrained networks (0.8 y) and between head runs; 0.02 AUROC is
# stricter than the 0.05 margins common in non-inferiority studies of diagnostic AUROC.
DEFAULT_EQUIVALENCE_MARGINS = (("mae", 0.5), ("auroc", 0.02))


@dataclass(frozen=True)
class ReportSettings:
    """Thresholds the report applies to saved results (it never changes the results).

    Attributes:
        min_cell_n: subgroup rows (and age bins) with fewer test ECGs per head
            are suppressed with a note; small cells say little and can point at
            few patients.
        signal_share: flag the raw-signal reference (``signal-spectrum``) when
            the best encoder keeps less than this share of its cohort-identification
            accuracy above chance: ``(best - chance) / (signal - chance)``.
        equivalence_margins: per metric (``mae``, ``auroc``), the largest random-vs-IDB
            difference claim 1 calls "no difference" when the 90% interval of the
            per-seed differences lies inside it (two one-sided tests at 0.05).
    """

    min_cell_n: int = DEFAULT_MIN_CELL_N
    signal_share: float = DEFAULT_SIGNAL_SHARE
    equivalence_margins: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_EQUIVALENCE_MARGINS)
    )

    def __post_init__(self) -> None:
        if isinstance(self.min_cell_n, bool) or not isinstance(self.min_cell_n, int):
            raise CapeError(f"report.min_cell_n must be an integer, got {self.min_cell_n!r}")
        if self.min_cell_n < 1:
            raise CapeError(f"report.min_cell_n must be >= 1, got {self.min_cell_n}")
        share = self.signal_share
        if isinstance(share, bool) or not isinstance(share, int | float):
            raise CapeError(f"report.signal_share must be a number, got {share!r}")
        if not (math.isfinite(share) and 0.0 < share <= 1.0):
            raise CapeError(f"report.signal_share must lie in (0, 1], got {share}")
        margins = self.equivalence_margins
        if not isinstance(margins, Mapping):
            raise CapeError(f"report.equivalence_margins must be a mapping, got {margins!r}")
        for metric, margin in margins.items():
            if (
                isinstance(margin, bool)
                or not isinstance(margin, int | float)
                or not (math.isfinite(margin) and margin > 0)
            ):
                raise CapeError(
                    f"report.equivalence_margins.{metric} must be a positive number, got {margin!r}"
                )

    @classmethod
    def from_study(cls, study: Mapping[str, Any] | None, **overrides: Any) -> ReportSettings:
        """Settings from a study's ``report:`` section, then ``overrides`` (None ones ignored).

        Raises:
            CapeError: a value of the wrong type or out of range (named by its key).
        """
        section = (study or {}).get("report")
        values: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        if isinstance(section, Mapping):
            values.update({k: v for k, v in section.items() if k in names and v is not None})
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("equivalence_margins"), Mapping):
            # A study that sets one metric's margin keeps the default of the other.
            values["equivalence_margins"] = {
                **dict(DEFAULT_EQUIVALENCE_MARGINS),
                **values["equivalence_margins"],
            }
        unknown = sorted(set(values) - names)
        if unknown:
            raise CapeError(f"unknown report settings {unknown}; known: {sorted(names)}")
        return cls(**values)
