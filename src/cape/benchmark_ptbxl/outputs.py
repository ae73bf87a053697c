"""Writing a benchmark run to disk and the table the command prints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cape.benchmark_ptbxl.benchmark import BenchmarkResult
from cape.benchmark_ptbxl.labels import LABEL_SETS
from cape.benchmark_ptbxl.literature import LITERATURE_SOURCE
from cape.protocols.results import write_results

EXTRA_TABLES = {"scores": "benchmark", "classes": "classes", "literature": "literature"}
# Literature rows printed beside CAPE's: the best network of the paper and the
# feature-based baseline (the full table is in literature.csv).
PRINTED_LITERATURE = ("xresnet1d101", "Wavelet+NN")


def write_benchmark(result: BenchmarkResult, out: str | Path) -> Path:
    """The protocols' tables (:func:`cape.protocols.write_results`) plus
    ``benchmark``, ``classes`` and ``literature`` as Parquet and csv."""
    out = write_results(result.tables, out)
    for attribute, name in EXTRA_TABLES.items():
        table: pd.DataFrame = getattr(result, attribute)
        table.to_parquet(out / f"{name}.parquet", index=False)
        table.to_csv(out / f"{name}.csv", index=False)
    return out


def format_scores(result: BenchmarkResult) -> str:
    """A plain-text table: per label set, every model's macro AUROC with its interval,
    then the literature values or the sentence saying they do not apply."""
    scores = result.scores
    if scores.empty:
        return "\n".join(["no label set could be scored", *result.messages])
    confidence = float(scores["confidence"].iloc[0])
    lines = [
        f"PTB-XL benchmark: macro AUROC on strat_fold 10 "
        f"[{confidence:.0%} bootstrap interval, {int(scores['n_resamples'].max())} resamples]",
        f"{'label set':<16} {'classes':>7} {'n_test':>6}  {'model':<24} {'macro AUROC':>11}  interval",
    ]
    order = [s for s in LABEL_SETS if s in set(scores["label_set"])]
    for label_set in order:
        rows = scores[scores["label_set"] == label_set]
        for k, row in enumerate(rows.itertuples()):
            head = f"{label_set:<16} {row.n_classes:>7} {row.n_test:>6}" if k == 0 else " " * 31
            model = (
                f"{row.model}@{row.encoder_seed}" if row.model != "mean-predictor" else row.model
            )
            interval = f"{row.ci_low:.3f}-{row.ci_high:.3f}" if np.isfinite(row.ci_low) else "--"
            lines.append(f"{head}  {model:<24} {row.macro_auroc:>11.3f}  {interval}")
            if k == 0 and row.skipped:
                lines.append(f"{'':<31}  (not scored, one class in fold 10: {row.skipped})")
    lines += [f"note: {message}" for message in result.messages]
    if result.literature.empty:
        lines.append(f"Literature values: {result.literature_note}.")
        return "\n".join(lines)
    lines.append(f"Literature values ({LITERATURE_SOURCE}; not CAPE results):")
    literature = result.literature
    for model in PRINTED_LITERATURE:
        cells = []
        for label_set in order:
            match = literature[
                (literature["model"] == model) & (literature["label_set"] == label_set)
            ]
            if len(match):
                cells.append(f"{label_set} {match['text'].iloc[0]}")
        lines.append(f"  {model}: " + ", ".join(cells))
    lines.append(f"  ({result.literature_note}; all models in literature.csv)")
    return "\n".join(lines)
