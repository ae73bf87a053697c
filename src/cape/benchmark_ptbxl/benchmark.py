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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import cape
from cape.benchmark_ptbxl.labels import LABEL_SETS, Statements, build_label_set, check_label_set
from cape.benchmark_ptbxl.literature import literature_applies, literature_table
from cape.benchmark_ptbxl.records import (
    Entry,
    Split,
    record_codes,
    unusable,
)
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

logger = logging.getLogger(__name__)

PROTOCOL = "ptbxl-benchmark"
SETTING = "in-distribution"
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


PredictFn = Callable[[Split], list[Entry]]


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
    bar = tqdm(
        total=len(settings.label_sets) * len(feature_sets), desc="ptbxl heads", disable=not progress
    )

    def fit_heads(split: Split) -> list[Entry]:
        entries: list[Entry] = []
        for feature_set in feature_sets:
            features = feature_set.features
            (prediction,) = fit_predict(
                split.task,
                settings.head,
                settings.seed,
                (features[split.positions["train"]], split.y["train"]),
                (features[split.positions["val"]], split.y["val"]),
                [features[split.positions["test"]]],
                context=f"{feature_set.label}, cohort {cohort}, label set {split.label_set}",
            )
            entries.append(
                (feature_set.model, feature_set.baseline, feature_set.encoder_seed, prediction)
            )
            bar.update()
        return entries

    try:
        return evaluate_label_sets(
            index,
            statements,
            cohort,
            settings,
            fit_heads,
            needs_validation=True,
            sources=sources,
            inputs=[feature_set.describe() for feature_set in feature_sets],
        )
    finally:
        bar.close()


def evaluate_label_sets(
    index: pd.DataFrame,
    statements: Statements,
    cohort: str,
    settings: BenchmarkSettings,
    predict: PredictFn,
    needs_validation: bool,
    sources: Sequence[str | Path] = (),
    inputs: Sequence[dict[str, Any]] = (),
) -> BenchmarkResult:
    """The protocol around a source of predictions: label sets, folds, mean predictor,
    shared resamples, scores, literature and tables.

    Args:
        index: rows with ``cohort``, ``record_id``, ``diagnoses``, ``strat_fold``.
        statements: the statements table.
        cohort: the PTB-XL cohort.
        settings: label sets and bootstrap (the head is used by ``predict`` only).
        predict: fold-10 scores of every model for a :class:`Split`.
        needs_validation: skip label sets without a label having both classes in fold 9.
        sources: the cohort's source folders.
        inputs: descriptions of the models' inputs for ``config.json``.

    Raises:
        CapeError: unknown cohort, missing codes or folds.
    """
    in_cohort = np.flatnonzero(index["cohort"].astype(str).to_numpy() == cohort)
    if in_cohort.size == 0:
        known = sorted(index["cohort"].astype(str).unique())
        raise CapeError(f"cohort {cohort!r} is not in the features (they hold {known})")
    if FOLD_COLUMN not in index:
        raise CapeError(
            f"the index has no {FOLD_COLUMN!r} column; the PTB-XL benchmark needs PTB-XL's "
            "folds (ingest with the ptbxl reader)"
        )
    rows_index = index.iloc[in_cohort]
    roles = fold_roles(rows_index[FOLD_COLUMN], f"{FOLD_COLUMN} of cohort {cohort!r}")
    codes = record_codes(rows_index)
    collector = Collector(
        PROTOCOL, index["record_id"].astype(str).to_numpy(), index["cohort"].astype(str).to_numpy()
    )
    score_rows: list[dict[str, Any]] = []
    class_rows: list[dict[str, Any]] = []
    count_rows: list[dict[str, Any]] = []
    messages: list[str] = []
    for label_set in settings.label_sets:
        labels = build_label_set(codes, statements, label_set)
        kept_roles = roles[labels.rows]
        part = {role: np.flatnonzero(kept_roles == role) for role in ("train", "val", "test")}
        split = Split(
            label_set,
            labels.classes,
            {role: in_cohort[labels.rows[rows]] for role, rows in part.items()},
            {role: labels.y[rows] for role, rows in part.items()},
            labels.n_dropped,
        )
        problem = unusable(label_set, labels.rows.size, part, split.y["val"], needs_validation)
        if problem:
            messages.append(problem)
            logger.warning(problem)
            continue
        for k, name in enumerate(labels.classes):
            class_rows.append(
                {"label_set": label_set, "label": name}
                | {f"n_{role}": int(split.y[role][:, k].sum()) for role in part}
            )
        count_rows.append(
            {
                "cohort": cohort,
                "task": split.task.name,
                "n_ecgs": labels.n_records,
                "n_labelled": int(labels.rows.size),
                "n_missing": 0,
                "n_invalid": 0,
                "n_empty": labels.n_dropped,
                "n_topcoded": 0,
                "n_excluded": labels.n_dropped,
            }
        )
        entries = predict(split)
        naive = mean_predictor(split.task, split.y["train"], int(part["test"].size))
        entries.append((MEAN_PREDICTOR, MEAN_PREDICTOR, 0, naive))
        _score_entries(collector, score_rows, split, entries, cohort, settings)
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
        "inputs": list(inputs),
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


def _score_entries(
    collector: Collector,
    score_rows: list[dict[str, Any]],
    split: Split,
    entries: list[Entry],
    cohort: str,
    settings: BenchmarkSettings,
) -> None:
    """Score every model of a label set on resamples shared by all of them."""
    y_test = split.y["test"]
    scored = scorable_columns(y_test)
    indices = None
    if scored.size:
        indices, _ = benchmark_resamples(
            y_test[:, scored],
            settings.n_resamples,
            derive_seed(settings.seed, "bootstrap", split.label_set),
        )
    sizes = {f"n_{role}": int(rows.size) for role, rows in split.positions.items()}
    for model, baseline, encoder_seed, prediction in entries:
        collector.add(
            model=model,
            baseline=baseline,
            encoder_seed=encoder_seed,
            setting=SETTING,
            train_cohort=cohort,
            test_cohort=cohort,
            task=split.task,
            run=0,
            positions=split.positions["test"],
            y_true=y_test,
            y_pred=prediction,
            label_names=split.classes,
            n_train=sizes["n_train"],
            n_val=sizes["n_val"],
        )
        score = score_label_set(y_test, prediction, split.classes, indices, settings.confidence)
        score_rows.append(
            {
                "label_set": split.label_set,
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
                "n_classes": len(split.classes),
                "n_scored": len(score.scored),
                "skipped": " ".join(score.skipped),
                **sizes,
                "n_dropped": split.n_dropped,
            }
        )
