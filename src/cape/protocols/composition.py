"""The composition matrix: every pretrained model × every labelled cohort.

For each labelled cohort and task, each run draws a train/val/test sample
from the cohort's patient-level splits (paper: 10,000 / 2,000 / 2,000 ECGs,
6 runs), the same sample for every model and encoder seed; a head is trained
on each model's features of the sample with the run's head seed and scored
on the test ECGs. The mean predictor (training mean or prevalence) and any
untrained encoder's features sit beside the models. Per cell: mean and 95%
t-interval over runs (and the spread over encoder seeds); per labelled cohort
and task: Kruskal-Wallis across the pretrained models.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cape.errors import CapeError
from cape.protocols.aggregates import across_cohorts
from cape.protocols.comparisons import kruskal_across_models, paired_tests
from cape.protocols.featuresets import (
    UNTRAINED,
    FeatureSet,
    pretraining_splits,
    store_mismatch_warnings,
)
from cape.protocols.fitting import fit_each_and_collect
from cape.protocols.results import Collector, ProtocolResult, summarise
from cape.protocols.run_config import run_config
from cape.protocols.sampling import derive_seed, draw_splits, plan_sizes, split_pools
from cape.protocols.settings import ProtocolSettings
from cape.protocols.tasks import TaskLabels, extract_labels

logger = logging.getLogger(__name__)


def check_cohorts(index: pd.DataFrame, cohorts: Sequence[str]) -> None:
    """Raise :class:`CapeError` if a cohort is not in the features index."""
    known = sorted(index["cohort"].astype(str).unique())
    unknown = sorted(set(cohorts) - set(known))
    if unknown:
        raise CapeError(f"unknown cohorts {unknown}; the features hold {known}")


def run_composition(
    feature_sets: Sequence[FeatureSet],
    index: pd.DataFrame,
    settings: ProtocolSettings,
    progress: bool = True,
) -> ProtocolResult:
    """Run the composition-matrix protocol.

    Args:
        feature_sets: aligned features, from :func:`cape.protocols.load_feature_sets`.
        index: the aligned features index.
        settings: protocol settings (``cohorts`` are the labelled cohorts; all by default).
        progress: show a progress bar over head fits.

    Returns:
        All tables; ``tests`` holds Kruskal-Wallis rows (and paired tests with ``compare``).

    Raises:
        CapeError: unknown cohort or task, no cohort labelled for any task, too
            few labelled ECGs in a split, a head that cannot be fitted.
    """
    settings.validate()
    cohorts = list(settings.cohorts or sorted(index["cohort"].astype(str).unique()))
    check_cohorts(index, cohorts)
    cohort_of = index["cohort"].astype(str).to_numpy()

    # -- plans: which (cohort, task) cells exist and what they draw --------------------------
    cells: list[tuple[str, TaskLabels, dict[str, np.ndarray], Any]] = []
    label_counts, messages, plans = [], [], []
    for task_name in settings.tasks:
        labels = extract_labels(index, task_name, settings.topcoded)
        label_counts.append(labels.counts[labels.counts["cohort"].isin(cohorts)])
        for cohort in cohorts:
            if not labels.labelled[cohort_of == cohort].any():
                messages.append(f"cohort {cohort!r} has no {task_name} labels; cell skipped")
                logger.warning(messages[-1])
                continue
            pools = split_pools(index, cohort, labels.labelled)
            plan = plan_sizes(
                pools,
                settings.sizes,
                f"cohort {cohort!r}, task {task_name!r}",
                settings.strict_sizes,
            )
            messages += plan.messages
            plans.append({"cohort": cohort, "task": task_name, **plan.sizes})
            cells.append((cohort, labels, pools, plan))
    if not cells:
        raise CapeError(f"no cohort of {cohorts} has labels for tasks {list(settings.tasks)}")

    # -- runs --------------------------------------------------------------------------------
    collector = Collector("composition", index["record_id"].to_numpy(), cohort_of)
    bar = tqdm(
        total=len(cells) * settings.runs * len(feature_sets),
        desc="composition heads",
        unit="head",
        disable=not progress,
    )
    for cohort, labels, pools, plan in cells:
        task = labels.task
        for run in range(settings.runs):
            sample = draw_splits(
                pools, plan, derive_seed(settings.seed, "composition", cohort, task.name, run)
            )
            head_seed = derive_seed(settings.seed, "head", cohort, task.name, run)
            y = {split: labels.y[positions] for split, positions in sample.items()}
            common = {
                "setting": "in-distribution",
                "train_cohort": cohort,
                "test_cohort": cohort,
                "task": task,
                "run": run,
                "positions": sample["test"],
                "y_true": y["test"],
                "label_names": labels.label_names,
                "n_train": sample["train"].size,
                "n_val": sample["val"].size,
            }
            fit_each_and_collect(
                collector,
                feature_sets,
                task,
                settings.head,
                head_seed,
                sample,
                y["train"],
                y["val"],
                sample["test"],
                common,
                context=f"cohort {cohort!r}, run {run}",
                on_head=bar.update,
            )
    bar.close()

    # -- tables ------------------------------------------------------------------------------
    results = collector.results()
    predictions = collector.predictions()
    tests = [kruskal_across_models(results)]
    if settings.compare:
        tests.append(paired_tests(results, predictions, *settings.compare, alpha=settings.alpha))
    summary, by_seed = summarise(results)
    return ProtocolResult(
        results=results,
        predictions=predictions,
        summary=summary,
        summary_by_seed=by_seed,
        tests=pd.concat([t for t in tests if len(t)], ignore_index=True)
        if any(len(t) for t in tests)
        else tests[0],
        labels=pd.concat(label_counts, ignore_index=True),
        aggregate=across_cohorts(results),
        config=run_config(
            settings,
            feature_sets,
            cohorts,
            plans,
            messages,
            store_mismatch_warnings(feature_sets) + _seen_test_warnings(feature_sets, cohorts),
            head_scaling=settings.head.describe_scaling(),
        ),
    )


def _seen_test_warnings(feature_sets: Sequence[FeatureSet], cohorts: Sequence[str]) -> list[str]:
    """Cohorts whose test ECGs some encoder was pretrained on (unlabelled), one line each."""
    lines = []
    for cohort in cohorts:
        seen = [
            fs.label
            for fs in feature_sets
            if fs.baseline != UNTRAINED and "test" in (pretraining_splits(fs.info, cohort) or ())
        ]
        if seen:
            lines.append(
                f"cohort {cohort!r}: its test ECGs were in the pretraining of {seen} "
                "(without labels); exclude_splits leaves them out"
            )
    return lines
