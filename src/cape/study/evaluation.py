"""The evaluate stage of a study: OOD and composition protocols, identifiability, retrieval.

Writes under the stage directory::

    ood/                 cape.protocols results (results, summary, tests, predictions, ...)
    composition/         the same for the composition matrix
    identifiability.parquet   one row per (model, encoder seed, target): accuracy and
                              macro AUROC with CIs, chance levels
    retrieval.parquet    one row per (model, encoder seed): same-patient top-1 retrieval
                         with mixed and same-cohort negatives, their gap, CIs, chance
    learning_probe.parquet  one row per (task, model, encoder seed): a linear probe's
                         in-distribution metric and its difference to the untrained twin
                         (cape.protocols.learning_probe)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

IDENTIFIABILITY_FILE = "identifiability.parquet"
RETRIEVAL_FILE = "retrieval.parquet"
LEARNING_PROBE_FILE = "learning_probe.parquet"
_IDENTIFIABILITY_MAX_PER_COHORT = 2000  # CV logistic regression cost; enough for tight CIs


def _head(section: Any) -> Any:
    from cape.protocols import HeadSettings

    params = {
        k: v
        for k, v in (
            ("max_epochs", section.head.max_epochs),
            ("patience", section.head.patience),
            ("batch_size", section.head.batch_size),
            ("learning_rate", section.head.learning_rate),
            ("hidden_sizes", section.head.hidden_sizes),
        )
        if v is not None
    }
    head = section.head
    return HeadSettings(
        kind=head.kind,
        params=params,
        std_floor=head.std_floor,
        age_target=head.age_target,
        hidden_grid=tuple(head.hidden_grid) if head.hidden_grid else None,
        grid_layers=head.grid_layers,
    )


SIGNAL_REFERENCE = "signal-spectrum"


def identifiability_table(
    feature_sets: Sequence[Any], index: pd.DataFrame, seed: int = 0, store: Any = None
) -> pd.DataFrame:
    """Cohort (and device) identifiability of every feature set, on the same ECGs for all.

    A random subset of at most 2,000 ECGs per cohort is used (the same for every
    model), folds are grouped by patient.
    """
    from cape.diagnostics import cohort_identifiability

    rng = np.random.default_rng(seed)
    keep = []
    for _, rows in index.groupby("cohort", sort=True):
        positions = rows.index.to_numpy()
        if len(positions) > _IDENTIFIABILITY_MAX_PER_COHORT:
            positions = np.sort(
                rng.choice(positions, _IDENTIFIABILITY_MAX_PER_COHORT, replace=False)
            )
        keep.append(positions)
    subset = np.concatenate(keep)
    groups = (index["cohort"].astype(str) + "/" + index["patient_id"].astype(str)).to_numpy()[
        subset
    ]
    targets = {"cohort": index["cohort"].astype(str).to_numpy()[subset]}
    if "device" in index and index["device"].notna().all():
        targets["device"] = index["device"].astype(str).to_numpy()[subset]
    candidates = [
        (fs.model, fs.encoder_seed, fs.baseline, fs.features[subset]) for fs in feature_sets
    ]
    if store is not None and "store_index" in index:
        # The reference: how identifiable the stored signals are before any encoder.
        candidates.append(
            (
                SIGNAL_REFERENCE,
                0,
                "signal",
                _band_powers(store, index["store_index"].to_numpy()[subset]),
            )
        )
    rows = []
    for model, encoder_seed, baseline, matrix in candidates:
        for target, labels in targets.items():
            if len(np.unique(labels)) < 2:
                continue
            result = cohort_identifiability(matrix, labels, groups=groups, seed=seed)
            summary = result.summary()
            row: dict[str, Any] = {
                "model": model,
                "encoder_seed": encoder_seed,
                "baseline": baseline,
                "target": target,
                "accuracy": summary["accuracy"],
                "macro_auroc": summary["macro_auroc"],
                "chance_majority": summary["chance_majority"],
                "chance_uniform": summary["chance_uniform"],
                "n_samples": summary["n_samples"],
                "n_classes": len(summary["classes"]),
            }
            for metric in ("accuracy", "macro_auroc"):
                for bound, value in summary[f"{metric}_ci"].items():
                    row[f"{metric}_ci_{bound}"] = value
            rows.append(row)
    return pd.DataFrame(rows)


def retrieval_table(
    feature_sets: Sequence[Any],
    index: pd.DataFrame,
    seed: int = 0,
    store: Any = None,
    n_draws: int = 2000,
    n_negatives: int = 127,
) -> pd.DataFrame:
    """Same-patient retrieval of every feature set on the same anchors and negatives.

    One row per (model, encoder seed): top-1 with mixed and with same-cohort
    negatives and their paired gap (:mod:`cape.diagnostics.retrieval`), plus the
    band powers of the stored signals as a reference when the store is given.
    Only the ECGs the draws touch are read and standardised (the same rows for
    every model).
    """
    from cape.diagnostics import RetrievalDraws, draw_retrieval_sets, patient_retrieval

    patients = (index["cohort"].astype(str) + "/" + index["patient_id"].astype(str)).to_numpy()
    cohorts = index["cohort"].astype(str).to_numpy()
    n_negatives = min(n_negatives, int(pd.Series(cohorts).value_counts().min()) // 2)
    try:
        draws = draw_retrieval_sets(patients, cohorts, n_draws, max(n_negatives, 1), seed)
    except ValueError as error:
        logger.warning("retrieval skipped: %s", error)
        return pd.DataFrame()
    parts = (draws.anchors, draws.positives, draws.mixed.ravel(), draws.same_cohort.ravel())
    used = np.unique(np.concatenate(parts))
    local = RetrievalDraws(
        anchors=np.searchsorted(used, draws.anchors),
        positives=np.searchsorted(used, draws.positives),
        mixed=np.searchsorted(used, draws.mixed),
        same_cohort=np.searchsorted(used, draws.same_cohort),
    )
    anchor_cohorts = tuple(sorted(set(cohorts[draws.anchors])))
    candidates = [
        (fs.model, fs.encoder_seed, fs.baseline, fs.features[used]) for fs in feature_sets
    ]
    if store is not None and "store_index" in index:
        powers = _band_powers(store, index["store_index"].to_numpy()[used])
        candidates.append((SIGNAL_REFERENCE, 0, "signal", powers))
    rows = []
    for model, encoder_seed, baseline, matrix in candidates:
        result = patient_retrieval(matrix, local, seed=seed, cohorts=anchor_cohorts)
        summary = result.summary()
        summary["cohorts"] = ",".join(summary["cohorts"])
        rows.append({"model": model, "encoder_seed": encoder_seed, "baseline": baseline, **summary})
    return pd.DataFrame(rows)


def _band_powers(store: Any, indices: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Band powers of the first 7 s of stored ECGs, read in chunks (memory stays flat)."""
    from cape.diagnostics import band_power_features

    parts = [
        band_power_features(
            store.read_many(indices[start : start + chunk])[:, :, :2800], store.sampling_rate_hz
        )
        for start in range(0, len(indices), chunk)
    ]
    return np.concatenate(parts)


def run_evaluation(
    section: Any,
    features: Sequence[Any],
    out: Path,
    log: Callable[[str], None] = print,
    progress: bool = True,
    store_path: Path | None = None,
) -> None:
    """Run the protocols a study's ``evaluate:`` section asks for on its feature sets."""
    from cape.protocols import (
        FeatureSpec,
        ProtocolSettings,
        load_feature_sets,
        run_composition,
        run_ood,
        write_results,
    )

    specs = [
        FeatureSpec(
            model="untrained" if f.untrained else f.name,
            path=f.directory,
            encoder_seed=f.seed,
            baseline="untrained" if f.untrained else "",
        )
        for f in features
    ]
    feature_sets, index = load_feature_sets(specs)
    store = None
    if store_path is not None and (section.identifiability or section.retrieval):
        from cape.store import CohortStore

        store = CohortStore.open(store_path)
    if section.identifiability:
        table = identifiability_table(feature_sets, index, seed=section.seed, store=store)
        table.to_parquet(out / IDENTIFIABILITY_FILE, index=False)
        table.to_csv(out / IDENTIFIABILITY_FILE.replace(".parquet", ".csv"), index=False)
        cohort_rows = table[table["target"] == "cohort"]
        if len(cohort_rows):
            summary = cohort_rows.groupby("model")["accuracy"].agg(["median", "min", "max"])
            log("  cohort identifiability (accuracy; median, min-max over encoder seeds):")
            for model, row in summary.iterrows():
                log(f"    {model:>10}: {row['median']:.3f} ({row['min']:.3f}-{row['max']:.3f})")
    if section.retrieval:
        table = retrieval_table(feature_sets, index, seed=section.seed, store=store)
        if len(table):
            table.to_parquet(out / RETRIEVAL_FILE, index=False)
            table.to_csv(out / RETRIEVAL_FILE.replace(".parquet", ".csv"), index=False)
            log(
                "  same-patient retrieval, top-1 (median over encoder seeds): mixed "
                f"negatives / same-cohort negatives / gap; chance {table['chance'].iloc[0]:.3f}"
            )
            summary = table.groupby("model")[["top1_mixed", "top1_same_cohort", "gap"]].median()
            for model, row in summary.iterrows():
                log(
                    f"    {model:>15}: {row['top1_mixed']:.3f} / {row['top1_same_cohort']:.3f}"
                    f" / {row['gap']:+.3f}"
                )
    if section.learning_probe and section.ood is not None:
        write_learning_probe(section, feature_sets, index, out, log)
    if section.ood is not None:
        ood = section.ood
        settings = ProtocolSettings.for_protocol(
            "ood",
            train_cohort=ood.train_cohort,
            tasks=tuple(ood.tasks),
            runs=ood.runs,
            ood_test_n=ood.test_n,
            ood_target_pool=ood.target_pool,
            compare=tuple(ood.compare) if ood.compare else None,
            head=_head(ood),
            seed=section.seed,
        )
        result = run_ood(feature_sets, index, settings, progress)
        write_results(result, out / "ood")
        log(f"  OOD results: {out / 'ood'}")
        _log_summary(result.summary, log)
    if section.composition is not None:
        comp = section.composition
        settings = ProtocolSettings.for_protocol(
            "composition",
            tasks=tuple(comp.tasks),
            runs=comp.runs,
            sizes=tuple(comp.sizes),
            head=_head(comp),
            seed=section.seed,
        )
        result = run_composition(feature_sets, index, settings, progress)
        write_results(result, out / "composition")
        log(f"  composition results: {out / 'composition'}")
    (out / "evaluate.json").write_text(
        json.dumps({"feature_sets": [fs.describe() for fs in feature_sets]}, indent=2, default=str)
    )


def write_learning_probe(
    section: Any,
    feature_sets: Sequence[Any],
    index: pd.DataFrame,
    out: Path,
    log: Callable[[str], None] = print,
) -> pd.DataFrame | None:
    """The linear-probe learning control on ``section.ood.train_cohort``, written to ``out``."""
    from cape.protocols.learning_probe import UNTRAINED, learning_probe_table

    if not any(fs.baseline == UNTRAINED for fs in feature_sets):
        log("  linear-probe learning control skipped: no untrained encoder in the study")
        return None
    ood = section.ood
    tasks = [t for t in ood.tasks if t in ("age", "sex")]
    table = learning_probe_table(feature_sets, index, ood.train_cohort, tasks, seed=section.seed)
    table.to_parquet(out / LEARNING_PROBE_FILE, index=False)
    table.to_csv(out / LEARNING_PROBE_FILE.replace(".parquet", ".csv"), index=False)
    log(
        f"  linear-probe learning control on {ood.train_cohort} (difference to the untrained "
        "twin, > 0 = pretrained better; median over seeds, 95% patient-bootstrap CIs):"
    )
    pretrained = table[table["baseline"] != UNTRAINED]
    for (task, model), rows in pretrained.groupby(["task", "model"], sort=False):
        intervals = ", ".join(
            f"[{low:+.3f}, {high:+.3f}]"
            for low, high in zip(rows["ci_low"], rows["ci_high"], strict=True)
        )
        log(f"    {task:>4} {model:>10}: {rows['difference'].median():+.3f} {intervals}")
    return table


def _log_summary(summary: pd.DataFrame, log: Callable[[str], None]) -> None:
    """Print OOD means per (task, test cohort) x model: mean over encoder seeds and runs."""
    if summary is None or not len(summary):
        return
    rows = summary[summary["setting"].isin(["out-of-distribution", "source"])]
    if not len(rows):
        return
    table = rows.pivot_table(
        index=["task", "metric", "test_cohort"], columns="model", values="mean", aggfunc="first"
    )
    log("  OOD (heads trained on the source cohort; mean over encoder seeds and runs):")
    for line in table.to_string(float_format=lambda v: f"{v:.3f}").splitlines():
        log(f"    {line}")
