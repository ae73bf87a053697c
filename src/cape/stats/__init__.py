"""Metrics and statistics: task metrics, bootstrap and t-intervals, rank tests, DeLong.

No file I/O: callers save indices, seeds and results themselves.

- :mod:`cape.stats.metrics`: MAE, R², AUROC, macro AUROC, accuracy.
- :mod:`cape.stats.intervals`: paired bootstrap indices and CIs, mean ± SE t-intervals.
- :mod:`cape.stats.hypothesis`: Kruskal-Wallis, Wilcoxon signed-rank.
- :mod:`cape.stats.delong`: DeLong's test for two correlated AUROCs, DeLong CI of one.
"""

from cape.stats.delong import (
    DeLongCI,
    DeLongTest,
    delong_ci,
    delong_covariance,
    delong_placements,
    delong_test,
)
from cape.stats.hypothesis import (
    KruskalResult,
    WilcoxonResult,
    kruskal_wallis,
    wilcoxon_signed_rank,
)
from cape.stats.intervals import (
    BootstrapCI,
    MeanCI,
    bootstrap_ci,
    bootstrap_difference_ci,
    bootstrap_indices,
    mean_se_ci,
)
from cape.stats.metrics import (
    MacroAUROCReport,
    UndefinedMetricError,
    accuracy,
    as_binary_labels,
    auroc,
    macro_auroc,
    macro_auroc_report,
    mean_absolute_error,
    per_label_auroc,
    r2_score,
)
from cape.stats.ranks import midrank

__all__ = [
    "BootstrapCI",
    "DeLongCI",
    "DeLongTest",
    "KruskalResult",
    "MacroAUROCReport",
    "MeanCI",
    "UndefinedMetricError",
    "WilcoxonResult",
    "accuracy",
    "as_binary_labels",
    "auroc",
    "bootstrap_ci",
    "bootstrap_difference_ci",
    "bootstrap_indices",
    "delong_ci",
    "delong_covariance",
    "delong_placements",
    "delong_test",
    "kruskal_wallis",
    "macro_auroc",
    "macro_auroc_report",
    "mean_absolute_error",
    "mean_se_ci",
    "midrank",
    "per_label_auroc",
    "r2_score",
    "wilcoxon_signed_rank",
]
