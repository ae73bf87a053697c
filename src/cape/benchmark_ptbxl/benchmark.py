"""The PTB-XL benchmark on saved features: one head per model and label set, fold 10 scored.

For each of the six label sets (:mod:`cape.benchmark_ptbxl.labels`) and each
features directory: build the targets of the PTB-XL cohort's records, train a
head on folds 1-8 with fold 9 as the validation set (early stopping for the
MLP, the choice of ``C`` for the linear probe), predict fold 10 and score
macro AUROC with a bootstrap interval on resamples shared by every model
(:mod:`cape.benchmark_ptbxl.scoring`). The mean predictor (the benchmark's
"naive" model: training prevalences) sits beside the models.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import cape
from cape.benchmark_ptbxl.labels import LABEL_SETS, Statements, build_label_set, check_label_set
from cape.benchmark_ptbxl.literature import literature_applies, literature_table
from cape.benchmark_ptbxl.scoring import (
    BENCHMARK_CONFIDENCE,
    BENCHMARK_RESAMPLES,
    benchmark_resamples,
    fold_roles,
    leaderboard_text,
    scorable_columns,
    score_label_set,
)
from cape.errors import CapeError
from cape.protocols.baselines import mean_predictor
from cape.protocols.featuresets import MEAN_PREDICTOR, FeatureSet
from cape.protocols.fitting import fit_predict
from cape.protocols.results import Collector, ProtocolResult, summarise
from cape.protocols.sampling import derive_seed
from cape.protocols.settings import HeadSettings
from cape.protocols.tasks import TaskSpec

logger = logging.getLogger(__name__)

PROTOCOL = "ptbxl-benchmark"
SETTING = "in-distribution"
CODES_COLUMN = "diagnoses"  # the keys of scp_codes, as the PTB-XL reader stores them
FOLD_COLUMN = "strat_fold"
DEFAULT_C_GRID = (0.001, 0.01, 0.1, 1.0)


def default_head() -> HeadSettings:
    """Logistic regression per label, ``C`` chosen on fold 9."""
    return HeadSettings("linear", {"C": list(DEFAULT_C_GRID)})


@dataclass
class BenchmarkSettings:
    """Settings of a benchmark run (saved in ``config.json``).

    Attributes:
        label_sets: which of the six label sets to run.
        head: head kind and parameters (default: :func:`default_head`).
        n_resamples: bootstrap resamples of fold 10 (the benchmark: 100).
        confidence: coverage of the percentile interval (the benchmark: 0.90).
        seed: head seed and base seed of the resamples.
    """

    label_sets: tuple[str, ...] = LABEL_SETS
    head: HeadSettings = field(default_factory=default_head)
    n_resamples: int = BENCHMARK_RESAMPLES
    confidence: float = BENCHMARK_CONFIDENCE
    seed: int = 0

    def validate(self) -> None:
        """Raises CapeError naming the bad setting."""
        if not self.label_sets:
            raise CapeError("no label sets chosen")
        for name in self.label_sets:
            check_label_set(name)
        self.head.validate()
        if self.n_resamples < 1:
            raise CapeError(f"n_resamples must be >= 1, got {self.n_resamples}")
        if not 0.0 < self.confidence < 1.0:
            raise CapeError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.seed < 0:
            raise CapeError(f"seed must be >= 0, got {self.seed}")


@dataclass
class BenchmarkResult:
    """Everything a run produces.

    Attributes:
        tables: the protocols' tidy tables (results, predictions, summaries, labels, config).
        scores: one row per (label set, model, encoder seed): macro AUROC, interval,
            the leaderboard text, classes scored and skipped, fold sizes.
        classes: one row per (label set, class): positives in train, val and test.
        literature: the published values, or empty when they do not apply.
        literature_note: why they do or do not apply.
        messages: why label sets were skipped.
    """

    tables: ProtocolResult
    scores: pd.DataFrame
    classes: pd.DataFrame
    literature: pd.DataFrame
    literature_note: str
    messages: list[str] = field(default_factory=list)


def _unusable(
    label_set: str, n_labelled: int, part: dict[str, np.ndarray], y_val: np.ndarray
) -> str | None:
    """Why a label set cannot be run (None if it can): no labelled records in a fold, or
    no label with both classes in fold 9, which chooses C / stops the MLP."""
    empty = [role for role, rows in part.items() if rows.size == 0]
    if n_labelled == 0:
        return f"label set {label_set!r} skipped: no record has a label in it"
    if empty:
        return (
            f"label set {label_set!r} skipped: no labelled records in the "
            f"{'/'.join(empty)} fold(s) ({n_labelled} labelled records in all)"
        )
    if scorable_columns(y_val).size == 0:
        return (
            f"label set {label_set!r} skipped: no label has both classes in fold 9 "
            f"({part['val'].size} records), so the head cannot be validated"
        )
    return None


def record_codes(index: pd.DataFrame, source: str = "features index") -> list[list[str]]:
    """Per row, the SCP codes (keys of ``scp_codes``) from the index's ``diagnoses`` column.

    Raises:
        CapeError: the column is missing.
    """
    if CODES_COLUMN not in index:
        raise CapeError(
            f"{source} has no {CODES_COLUMN!r} column (the SCP codes); embed a store "
            "ingested with the ptbxl reader"
        )
    codes = []
    for value in index[CODES_COLUMN].tolist():
        if isinstance(value, list | tuple | np.ndarray):
            codes.append([str(code) for code in value])
        else:
            codes.append([])
    return codes


def _task(label_set: str) -> TaskSpec:
    return TaskSpec(f"ptbxl-{label_set}", "multilabel", "macro_auroc", True, CODES_COLUMN)


def run_benchmark(
    feature_sets: Sequence[FeatureSet],
    index: pd.DataFrame,
    statements: Statements,
    cohort: str,
    settings: BenchmarkSettings | None = None,
    sources: Sequence[str | Path] = (),
    progress: bool = True,
) -> BenchmarkResult:
    """Run the benchmark on one PTB-XL cohort of aligned features.

    Args:
        feature_sets: aligned features (:func:`cape.protocols.load_feature_sets`).
        index: the aligned index (``cohort``, ``record_id``, ``diagnoses``, ``strat_fold``).
        statements: PTB-XL's statements table (:func:`read_statements`).
        cohort: the PTB-XL cohort in the index.
        settings: label sets, head, bootstrap.
        sources: the cohort's source folders (decide whether literature values apply).
        progress: progress bar over heads.

    Raises:
        CapeError: unknown cohort, missing codes or folds, or a head that cannot
            be fitted. A label set with an empty fold, or without a label having
            both classes in fold 9, is skipped and named in ``messages``.
    """
    settings = settings or BenchmarkSettings()
    settings.validate()
    in_cohort = np.flatnonzero(index["cohort"].astype(str).to_numpy() == cohort)
    if in_cohort.size == 0:
        known = sorted(index["cohort"].astype(str).unique())
        raise CapeError(f"cohort {cohort!r} is not in the features (they hold {known})")
    if FOLD_COLUMN not in index:
        raise CapeError(
            f"the features index has no {FOLD_COLUMN!r} column; the PTB-XL benchmark "
            "needs PTB-XL's folds (ingest with the ptbxl reader, then embed)"
        )
    rows_index = index.iloc[in_cohort]
    roles = fold_roles(rows_index[FOLD_COLUMN], f"{FOLD_COLUMN} of cohort {cohort!r}")
    codes = record_codes(rows_index)
    collector = Collector(
        PROTOCOL, index["record_id"].to_numpy(), index["cohort"].astype(str).to_numpy()
    )
    score_rows: list[dict[str, Any]] = []
    class_rows: list[dict[str, Any]] = []
    count_rows: list[dict[str, Any]] = []
    messages: list[str] = []
    total = len(settings.label_sets) * (len(feature_sets) + 1)
    bar = tqdm(total=total, desc="ptbxl heads", disable=not progress)
    for label_set in settings.label_sets:
        labels = build_label_set(codes, statements, label_set)
        task = _task(label_set)
        kept_roles = roles[labels.rows]
        part = {role: np.flatnonzero(kept_roles == role) for role in ("train", "val", "test")}
        y = {role: labels.y[rows] for role, rows in part.items()}
        problem = _unusable(label_set, labels.rows.size, part, y["val"])
        if problem:
            messages.append(problem)
            logger.warning(problem)
            bar.update(len(feature_sets) + 1)
            continue
        positions = {role: in_cohort[labels.rows[rows]] for role, rows in part.items()}
        for k, name in enumerate(labels.classes):
            class_rows.append(
                {"label_set": label_set, "label": name}
                | {f"n_{role}": int(y[role][:, k].sum()) for role in part}
            )
        count_rows.append(
            {
                "cohort": cohort,
                "task": task.name,
                "n_ecgs": labels.n_records,
                "n_labelled": int(labels.rows.size),
                "n_missing": 0,
                "n_invalid": 0,
                "n_empty": labels.n_dropped,
                "n_topcoded": 0,
                "n_excluded": labels.n_dropped,
            }
        )
        scored = scorable_columns(y["test"])
        indices = None
        if scored.size:
            indices, _ = benchmark_resamples(
                y["test"][:, scored],
                settings.n_resamples,
                derive_seed(settings.seed, "bootstrap", label_set),
            )
        common = {
            "setting": SETTING,
            "train_cohort": cohort,
            "test_cohort": cohort,
            "task": task,
            "run": 0,
            "positions": positions["test"],
            "y_true": y["test"],
            "label_names": labels.classes,
            "n_train": int(part["train"].size),
            "n_val": int(part["val"].size),
        }
        entries: list[tuple[str, str, int, np.ndarray]] = []
        for feature_set in feature_sets:
            (prediction,) = fit_predict(
                task,
                settings.head,
                settings.seed,
                (feature_set.features[positions["train"]], y["train"]),
                (feature_set.features[positions["val"]], y["val"]),
                [feature_set.features[positions["test"]]],
                context=f"{feature_set.label}, cohort {cohort}, label set {label_set}",
            )
            entries.append(
                (feature_set.model, feature_set.baseline, feature_set.encoder_seed, prediction)
            )
            bar.update()
        naive = mean_predictor(task, y["train"], int(part["test"].size))
        entries.append((MEAN_PREDICTOR, MEAN_PREDICTOR, 0, naive))
        bar.update()
        for model, baseline, encoder_seed, prediction in entries:
            collector.add(
                model=model,
                baseline=baseline,
                encoder_seed=encoder_seed,
                y_pred=prediction,
                **common,
            )
            score = score_label_set(
                y["test"], prediction, labels.classes, indices, settings.confidence
            )
            score_rows.append(
                {
                    "label_set": label_set,
                    "model": model,
                    "baseline": baseline,
                    "encoder_seed": encoder_seed,
                    "macro_auroc": score.macro_auroc,
                    "ci_low": score.ci_low,
                    "ci_high": score.ci_high,
                    "plus_minus": score.plus_minus,
                    "leaderboard": leaderboard_text(score.macro_auroc, score.plus_minus),
                    "confidence": score.confidence,
                    "n_resamples": score.n_resamples,
                    "n_classes": len(labels.classes),
                    "n_scored": len(score.scored),
                    "skipped": " ".join(score.skipped),
                    "n_train": int(part["train"].size),
                    "n_val": int(part["val"].size),
                    "n_test": int(part["test"].size),
                    "n_dropped": labels.n_dropped,
                }
            )
    bar.close()
    applies, note = literature_applies(statements, int(in_cohort.size), sources)
    logger.info(note)
    literature = literature_table() if applies else pd.DataFrame()
    if applies:
        literature = literature[literature["label_set"].isin(settings.label_sets)]
    results = collector.results()
    summary, by_seed = summarise(results)
    config = {
        "cape_version": cape.__version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "protocol": PROTOCOL,
        "cohort": cohort,
        "statements": statements.source,
        "sources": [str(s) for s in sources],
        "settings": asdict(settings),
        "feature_sets": [feature_set.describe() for feature_set in feature_sets],
        "folds": {"train": "strat_fold 1-8", "val": "strat_fold 9", "test": "strat_fold 10"},
        "messages": messages,
        "literature_applies": applies,
        "literature_note": note,
    }
    tables = ProtocolResult(
        results=results,
        predictions=collector.predictions(),
        summary=summary,
        summary_by_seed=by_seed,
        tests=pd.DataFrame(),
        labels=pd.DataFrame(count_rows),
        config=config,
    )
    return BenchmarkResult(
        tables=tables,
        scores=pd.DataFrame(score_rows),
        classes=pd.DataFrame(class_rows),
        literature=literature.reset_index(drop=True),
        literature_note=note,
        messages=messages,
    )
