"""The PTB-XL benchmark protocol (Strodthoff et al., IEEE JBHI 2021) on CAPE features.

Six label sets from ``scp_statements.csv`` (all, diagnostic, subdiagnostic,
superdiagnostic, form, rhythm), PTB-XL's folds (1-8 train, 9 validation,
10 test), macro AUROC on fold 10 with the benchmark's bootstrap, and the
published results beside CAPE's when the cohort is the real PTB-XL. See
``docs/ptbxl-benchmark.md``.

```python
from cape.benchmark_ptbxl import read_statements, run_benchmark
from cape.protocols import FeatureSpec, load_feature_sets
sets, index = load_feature_sets([FeatureSpec("idb", features_dir)])
result = run_benchmark(sets, index, read_statements(ptbxl_dir), cohort="ptbxl")
```
"""

from cape.benchmark_ptbxl.benchmark import (
    PROTOCOL,
    BenchmarkResult,
    BenchmarkSettings,
    default_head,
    record_codes,
    run_benchmark,
)
from cape.benchmark_ptbxl.labels import (
    LABEL_SETS,
    PUBLISHED_N_CLASSES,
    LabelSet,
    Statements,
    build_label_set,
    read_statements,
    statements_from_frame,
)
from cape.benchmark_ptbxl.literature import (
    LITERATURE_SOURCE,
    is_ptbxl_statements,
    literature_applies,
    literature_table,
)
from cape.benchmark_ptbxl.predictions import PredictionFile, read_predictions, score_predictions
from cape.benchmark_ptbxl.scoring import (
    BENCHMARK_CONFIDENCE,
    BENCHMARK_RESAMPLES,
    LabelSetScore,
    benchmark_resamples,
    fold_roles,
    leaderboard_text,
    score_label_set,
)

__all__ = [
    "BENCHMARK_CONFIDENCE",
    "BENCHMARK_RESAMPLES",
    "LABEL_SETS",
    "LITERATURE_SOURCE",
    "PROTOCOL",
    "PUBLISHED_N_CLASSES",
    "BenchmarkResult",
    "BenchmarkSettings",
    "LabelSet",
    "LabelSetScore",
    "PredictionFile",
    "Statements",
    "benchmark_resamples",
    "build_label_set",
    "default_head",
    "fold_roles",
    "is_ptbxl_statements",
    "leaderboard_text",
    "literature_applies",
    "literature_table",
    "read_predictions",
    "read_statements",
    "record_codes",
    "run_benchmark",
    "score_label_set",
    "score_predictions",
    "statements_from_frame",
]
