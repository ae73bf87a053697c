"""Evaluation protocols: the composition matrix and the out-of-distribution protocol.

Both read precomputed features (``cape embed``) of several models and encoder
seeds, train small heads per run, and return tidy tables
(:class:`ProtocolResult`) that :func:`write_results` saves and
:func:`read_results` reads back. See ``docs/evaluation.md``.

```python
from cape.protocols import FeatureSpec, ProtocolSettings, load_feature_sets, run_ood
sets, index = load_feature_sets([FeatureSpec("random", path_a), FeatureSpec("idb", path_b)])
settings = ProtocolSettings.for_protocol("ood", train_cohort="A", compare=("random", "idb"))
result = run_ood(sets, index, settings)
```
"""

from collections.abc import Sequence

import pandas as pd

from cape.protocols.aggregates import AGGREGATE_COLUMNS, across_cohorts
from cape.protocols.baselines import mean_predictor
from cape.protocols.comparisons import TEST_COLUMNS, kruskal_across_models, paired_tests
from cape.protocols.composition import run_composition
from cape.protocols.featuresets import (
    MEAN_PREDICTOR,
    UNTRAINED,
    FeatureSet,
    FeatureSpec,
    load_feature_sets,
    pretraining_leak_warnings,
    store_mismatch_warnings,
)
from cape.protocols.ood import run_ood
from cape.protocols.ood_diagnostics import shift_table, subgroup_table
from cape.protocols.results import (
    PREDICTION_COLUMNS,
    RESULT_COLUMNS,
    ProtocolResult,
    read_results,
    summarise,
    write_results,
)
from cape.protocols.sampling import derive_seed, draw_splits, plan_sizes, split_pools
from cape.protocols.settings import PROTOCOLS, HeadSettings, ProtocolSettings
from cape.protocols.tasks import TASKS, TaskLabels, TaskSpec, extract_labels, get_task

__all__ = [
    "AGGREGATE_COLUMNS",
    "MEAN_PREDICTOR",
    "PREDICTION_COLUMNS",
    "PROTOCOLS",
    "RESULT_COLUMNS",
    "TASKS",
    "TEST_COLUMNS",
    "UNTRAINED",
    "FeatureSet",
    "FeatureSpec",
    "HeadSettings",
    "ProtocolResult",
    "ProtocolSettings",
    "TaskLabels",
    "TaskSpec",
    "across_cohorts",
    "derive_seed",
    "draw_splits",
    "extract_labels",
    "get_task",
    "kruskal_across_models",
    "load_feature_sets",
    "mean_predictor",
    "paired_tests",
    "plan_sizes",
    "pretraining_leak_warnings",
    "read_results",
    "run_composition",
    "run_ood",
    "run_protocol",
    "shift_table",
    "split_pools",
    "store_mismatch_warnings",
    "subgroup_table",
    "summarise",
    "write_results",
]


def run_protocol(
    feature_sets: Sequence[FeatureSet],
    index: pd.DataFrame,
    settings: ProtocolSettings,
    progress: bool = True,
) -> ProtocolResult:
    """Run ``settings.protocol``: :func:`run_composition` or :func:`run_ood`."""
    runner = run_composition if settings.protocol == "composition" else run_ood
    return runner(feature_sets, index, settings, progress)
