"""Out-of-distribution protocol: heads trained on one cohort, tested on every other.

Per task, each run draws the training cohort's sample from its patient-level
splits (paper: the whole 50/10/40 split, 10 runs; write that split with
``cape split --fractions 0.5 0.1 0.4``), trains a head on every model's
features with the run's head seed, and scores it on

- the training cohort's test ECGs (``setting = "source"``), and
- ``ood_test_n`` ECGs (paper: 10,000) drawn once from each target cohort's
  pool (``setting = "out-of-distribution"``) — the same ECGs for every model,
  encoder seed and run, so comparisons are paired ECG by ECG. The pool
  (``ood_target_pool``) is the whole cohort minus the splits any evaluated
  encoder was pretrained on (``"unseen"``, the default), the whole cohort
  (``"all"``, the paper's protocol) or the test split (``"test"``).

Beside them, on the same target ECGs: the **in-cohort head** trained on the
target cohort's own train/val splits with the training cohort's sizes, leaving
out the patients of the target ECGs (``setting = "in-cohort"``,
``train_cohort`` = the target), and the **mean predictor** of both the
training cohort (out of distribution) and the target (in cohort). OOD error is
only meaningful between these two.

The training cohort's test patients must be left out of pretraining
(``exclude_splits: [test]`` or ``{TRAIN_COHORT: [test]}``); a warning names
any encoder whose pretraining config shows otherwise.
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
from cape.protocols.baselines import mean_predictor
from cape.protocols.comparisons import empty_tests, paired_tests
from cape.protocols.composition import check_cohorts
from cape.protocols.featuresets import (
    MEAN_PREDICTOR,
    FeatureSet,
    pretraining_leak_warnings,
    store_mismatch_warnings,
)
from cape.protocols.fitting import fit_each_and_collect, fit_predict
from cape.protocols.ood_diagnostics import shift_table, subgroup_table
from cape.protocols.results import Collector, ProtocolResult, summarise
from cape.protocols.run_config import run_config
from cape.protocols.sampling import (
    SizePlan,
    derive_seed,
    draw,
    draw_splits,
    plan_sizes,
    split_pools,
)
from cape.protocols.settings import ProtocolSettings
from cape.protocols.targets import outside_patients, pool_name, target_splits
from cape.protocols.tasks import TaskLabels, extract_labels

logger = logging.getLogger(__name__)


class _Target:
    """One target cohort of one task: its fixed test ECGs and its own pools for the ceiling."""

    def __init__(self, name: str, positions: np.ndarray, pools: dict[str, np.ndarray]) -> None:
        self.name = name
        self.positions = positions
        self.pools = pools
        self.ceiling_plan: SizePlan | None = None


def _targets(
    settings: ProtocolSettings, index: pd.DataFrame, cohort_of: np.ndarray
) -> tuple[str, list[str]]:
    source = settings.train_cohort
    if not source:
        raise CapeError("the ood protocol needs a training cohort (--train-cohort)")
    check_cohorts(index, [source])
    targets = list(settings.cohorts or sorted(set(cohort_of) - {source}))
    if source in targets:
        raise CapeError(
            f"test cohort {source!r} is the training cohort; out-of-distribution targets must "
            "be other cohorts (its own test split is always scored as setting 'source')"
        )
    check_cohorts(index, targets)
    if not targets:
        raise CapeError(f"no other cohort than {source!r} in the features to test on")
    return source, targets


def _plan_task(
    settings: ProtocolSettings,
    index: pd.DataFrame,
    labels: TaskLabels,
    source: str,
    targets: Sequence[str],
    messages: list[str],
    pools_of: dict[str, tuple[str, ...] | None],
) -> tuple[dict[str, np.ndarray], SizePlan, list[_Target]]:
    task = labels.task.name
    cohort_of = index["cohort"].astype(str).to_numpy()
    if not labels.labelled[cohort_of == source].any():
        raise CapeError(f"training cohort {source!r} has no {task} labels")
    pools = split_pools(index, source, labels.labelled)
    plan = plan_sizes(
        pools, settings.sizes, f"cohort {source!r}, task {task!r}", settings.strict_sizes
    )
    messages += plan.messages
    chosen = []
    for name in targets:
        if not labels.labelled[cohort_of == name].any():
            messages.append(f"target cohort {name!r} has no {task} labels; skipped")
            logger.warning(messages[-1])
            continue
        target_pools = split_pools(index, name, labels.labelled)
        allowed = pools_of[name]
        label = pool_name(allowed)
        pool = (
            np.flatnonzero((cohort_of == name) & labels.labelled)
            if allowed is None
            else np.sort(np.concatenate([target_pools[split] for split in allowed]))
        )
        test_plan = plan_sizes(
            {label: pool},
            [settings.ood_test_n],
            f"target cohort {name!r}, task {task!r}",
            settings.strict_sizes,
            splits=(label,),
        )
        messages += test_plan.messages
        positions = draw(
            pool,
            test_plan.sizes[label],
            derive_seed(settings.seed, "ood-target", name, task),
        )
        # The ceiling's training sample must not share patients with the target ECGs.
        outside = outside_patients(index, positions)
        ceiling_pools = {split: rows[outside[rows]] for split, rows in target_pools.items()}
        target = _Target(name, positions, ceiling_pools)
        if settings.ceiling:
            try:
                target.ceiling_plan = plan_sizes(
                    ceiling_pools,
                    [plan.sizes["train"], plan.sizes["val"]],
                    f"in-cohort head of {name!r}, task {task!r} (patients of the target ECGs "
                    "left out)",
                    settings.strict_sizes,
                    splits=("train", "val"),
                    # A target smaller than the training cohort is the usual case: its
                    # capping goes to the results' messages (shown in the report), not
                    # to the console on every run.
                    expected=True,
                )
                messages += target.ceiling_plan.messages
                if labels.task.kind == "binary":
                    for split in ("train", "val"):
                        if np.unique(labels.y[ceiling_pools[split]]).size < 2:
                            raise CapeError(
                                f"its {split} split holds one class only once the target "
                                "ECGs' patients are left out"
                            )
            except CapeError as error:
                target.ceiling_plan = None
                messages.append(f"in-cohort ceiling of {name!r}, task {task!r} skipped: {error}")
                logger.warning(messages[-1])
        chosen.append(target)
    return pools, plan, chosen


def run_ood(
    feature_sets: Sequence[FeatureSet],
    index: pd.DataFrame,
    settings: ProtocolSettings,
    progress: bool = True,
) -> ProtocolResult:
    """Run the out-of-distribution protocol (see the module docstring).

    Args:
        feature_sets: aligned features, from :func:`cape.protocols.load_feature_sets`.
        index: the aligned features index.
        settings: protocol settings; ``train_cohort`` is required, ``cohorts``
            are the targets (default: every other cohort).
        progress: progress bars.

    Returns:
        All tables; ``tests`` holds the paired tests when ``settings.compare`` is set,
        ``shift`` the feature-shift summary, ``subgroups`` the subgroup metrics.

    Raises:
        CapeError: no or unknown training cohort, a target equal to the training
            cohort, unknown cohorts or tasks, too few labelled ECGs, a head that
            cannot be fitted, unknown models in ``compare``.
    """
    settings.validate()
    cohort_of = index["cohort"].astype(str).to_numpy()
    source, targets = _targets(settings, index, cohort_of)
    warnings = store_mismatch_warnings(feature_sets) + pretraining_leak_warnings(
        feature_sets, source
    )
    pools_of = target_splits(settings, feature_sets, targets, warnings)
    messages: list[str] = []
    label_counts, sizes, work = [], [], []
    for task in settings.tasks:
        labels = extract_labels(index, task, settings.topcoded)
        label_counts.append(labels.counts[labels.counts["cohort"].isin([source, *targets])])
        pools, plan, chosen = _plan_task(
            settings, index, labels, source, targets, messages, pools_of
        )
        sizes.append({"cohort": source, "task": task, **plan.sizes})
        for target in chosen:
            ceiling = target.ceiling_plan.sizes if target.ceiling_plan else {}
            sizes.append(
                {
                    "cohort": target.name,
                    "task": task,
                    "test": target.positions.size,
                    "test_pool": pool_name(pools_of[target.name]),
                    **ceiling,
                }
            )
        work.append((labels, pools, plan, chosen))

    n_fits = sum(
        1 + sum(t.ceiling_plan is not None for t in chosen) * settings.ceiling
        for *_, chosen in work
    )
    bar = tqdm(
        total=n_fits * settings.runs * len(feature_sets),
        desc="ood heads",
        unit="head",
        disable=not progress,
    )
    collector = Collector("ood", index["record_id"].to_numpy(), cohort_of)
    for labels, pools, plan, chosen in work:
        for run in range(settings.runs):
            _source_run(
                settings, labels, pools, plan, chosen, source, run, feature_sets, collector, bar
            )
            for target in chosen:
                if settings.ceiling and target.ceiling_plan is not None:
                    _ceiling_run(settings, labels, target, run, feature_sets, collector, bar)
    bar.close()

    results = collector.results()
    predictions = collector.predictions()
    summary, by_seed = summarise(results)
    tests = empty_tests()
    if settings.compare:
        tests = paired_tests(results, predictions, *settings.compare, alpha=settings.alpha)
    shift = (
        shift_table(
            feature_sets,
            index,
            source,
            targets,
            settings.shift_threshold_sd,
            target_splits=pools_of,
            relative_std_floor=settings.head.std_floor,
        )
        if settings.feature_shift
        else pd.DataFrame()
    )
    subgroups = (
        subgroup_table(predictions, index, progress) if settings.subgroups else pd.DataFrame()
    )
    return ProtocolResult(
        results=results,
        predictions=predictions,
        summary=summary,
        summary_by_seed=by_seed,
        tests=tests,
        labels=pd.concat(label_counts, ignore_index=True),
        shift=shift,
        subgroups=subgroups,
        aggregate=across_cohorts(results, settings.compare),
        config=run_config(
            settings,
            feature_sets,
            [source, *targets],
            sizes,
            messages,
            warnings,
            train_cohort=source,
            target_pools={t: pool_name(pools_of[t]) for t in targets},
            head_scaling=settings.head.describe_scaling(),
        ),
    )


def _source_run(
    settings: ProtocolSettings,
    labels: TaskLabels,
    pools: dict[str, np.ndarray],
    plan: SizePlan,
    targets: Sequence[_Target],
    source: str,
    run: int,
    feature_sets: Sequence[FeatureSet],
    collector: Collector,
    bar: Any,
) -> None:
    """One run of the heads trained on the training cohort, scored on its test split and the targets."""
    task = labels.task
    sample = draw_splits(
        pools, plan, derive_seed(settings.seed, "ood-source", source, task.name, run)
    )
    head_seed = derive_seed(settings.seed, "head", source, task.name, run)
    y_train, y_val = labels.y[sample["train"]], labels.y[sample["val"]]
    evaluated = [(source, "source", sample["test"])] + [
        (t.name, "out-of-distribution", t.positions) for t in targets
    ]
    common: dict[str, Any] = {
        "train_cohort": source,
        "task": task,
        "run": run,
        "label_names": labels.label_names,
        "n_train": sample["train"].size,
        "n_val": sample["val"].size,
    }
    for feature_set in feature_sets:
        features = feature_set.features
        predictions = fit_predict(
            task,
            settings.head,
            head_seed,
            (features[sample["train"]], y_train),
            (features[sample["val"]], y_val),
            [features[positions] for _, _, positions in evaluated],
            context=f"{feature_set.label}, training cohort {source!r}, run {run}",
        )
        for (cohort, setting, positions), prediction in zip(evaluated, predictions, strict=True):
            collector.add(
                model=feature_set.model,
                baseline=feature_set.baseline,
                encoder_seed=feature_set.encoder_seed,
                setting=setting,
                test_cohort=cohort,
                positions=positions,
                y_true=labels.y[positions],
                y_pred=prediction,
                **common,
            )
        bar.update()
    for cohort, setting, positions in evaluated:
        collector.add(
            model=MEAN_PREDICTOR,
            baseline=MEAN_PREDICTOR,
            encoder_seed=0,
            setting=setting,
            test_cohort=cohort,
            positions=positions,
            y_true=labels.y[positions],
            y_pred=mean_predictor(task, y_train, positions.size),
            **common,
        )


def _ceiling_run(
    settings: ProtocolSettings,
    labels: TaskLabels,
    target: _Target,
    run: int,
    feature_sets: Sequence[FeatureSet],
    collector: Collector,
    bar: Any,
) -> None:
    """One run of the in-cohort heads of a target cohort, scored on its fixed OOD test ECGs."""
    assert target.ceiling_plan is not None
    task = labels.task
    sample = draw_splits(
        target.pools,
        target.ceiling_plan,
        derive_seed(settings.seed, "ood-ceiling", target.name, task.name, run),
    )
    head_seed = derive_seed(settings.seed, "head", target.name, task.name, run)
    y_train, y_val = labels.y[sample["train"]], labels.y[sample["val"]]
    common: dict[str, Any] = {
        "setting": "in-cohort",
        "train_cohort": target.name,
        "test_cohort": target.name,
        "task": task,
        "run": run,
        "positions": target.positions,
        "y_true": labels.y[target.positions],
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
        y_train,
        y_val,
        target.positions,
        common,
        context=f"in-cohort head of {target.name!r}, run {run}",
        on_head=bar.update,
    )
