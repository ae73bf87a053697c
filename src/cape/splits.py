"""Patient-level train/val/test splits.

Splits are assigned to patients, never to ECGs, so no patient can appear in
both a head's training data and its test data, and a cohort's test patients
can be excluded from pretraining. PTB-XL's recommended folds are respected
when a cohort carries ``strat_fold`` (1-8 train, 9 val, 10 test).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions):
        raise ValueError(f"need three non-negative split fractions, got {fractions}")
    total = float(sum(fractions))
    if not np.isclose(total, 1.0, atol=1e-6):
        raise ValueError(f"split fractions must sum to 1, got {fractions} (sum {total})")
    return float(fractions[0]), float(fractions[1]), float(fractions[2])


def _fold_split(folds: pd.Series) -> str | None:
    fold = int(folds.mode().iloc[0])
    if 1 <= fold <= 8:
        return "train"
    if fold == 9:
        return "val"
    if fold == 10:
        return "test"
    return None


def assign_splits(
    manifest: pd.DataFrame,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    use_strat_fold: bool = True,
    keep_existing: bool = True,
) -> pd.Series:
    """A split per manifest row, assigned by patient within each cohort.

    Args:
        manifest: rows with ``cohort``, ``patient_id`` and optionally ``split``
            and ``strat_fold``.
        fractions: train/val/test fractions of *patients* per cohort.
        seed: seeds the patient permutation (one generator per cohort, derived
            from the seed and the cohort name, so adding a cohort changes no
            other cohort's splits).
        use_strat_fold: for cohorts whose rows all carry ``strat_fold``
            (PTB-XL), map folds 1-8/9/10 to train/val/test. A patient whose ECGs
            span folds (not the case in PTB-XL) takes the most common fold.
        keep_existing: patients that already have a split keep it; only
            patients without one are assigned.

    Returns:
        Series aligned with ``manifest.index`` holding ``train``/``val``/``test``.
    """
    train_f, val_f, _ = _check_fractions(fractions)
    result = pd.Series(index=manifest.index, dtype=object)
    existing = manifest["split"] if ("split" in manifest and keep_existing) else None
    for cohort, rows in manifest.groupby("cohort", sort=True):
        patients = rows["patient_id"].astype(str)
        known: dict[str, str] = {}
        if existing is not None:
            have = existing.loc[rows.index].dropna()
            if len(have):
                known = dict(zip(patients.loc[have.index], have.astype(str), strict=True))
        if use_strat_fold and "strat_fold" in rows and rows["strat_fold"].notna().all():
            by_fold = rows.groupby(patients)["strat_fold"].apply(_fold_split)
            mapping = {**by_fold.to_dict(), **known}
        else:
            new = sorted(set(patients.unique()) - set(known))
            cohort_seed = [seed, *(ord(ch) for ch in str(cohort))]
            rng = np.random.default_rng(cohort_seed)
            order = [new[i] for i in rng.permutation(len(new))]
            n_train = round(train_f * len(order))
            n_val = round(val_f * len(order))
            mapping = dict(known)
            for k, patient in enumerate(order):
                mapping[patient] = (
                    "train" if k < n_train else ("val" if k < n_train + n_val else "test")
                )
        result.loc[rows.index] = patients.map(mapping).to_numpy()
    return result


def check_patient_disjoint(manifest: pd.DataFrame) -> None:
    """Raise ValueError if any patient of a cohort appears in two splits."""
    labelled = manifest.dropna(subset=["split"])
    n_splits = labelled.groupby(["cohort", "patient_id"])["split"].nunique()
    bad = n_splits[n_splits > 1]
    if len(bad):
        examples = ", ".join(f"{c}/{p}" for c, p in bad.index[:5])
        raise ValueError(f"{len(bad)} patients appear in more than one split (e.g. {examples})")


def split_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """ECG and patient counts per cohort and split."""
    grouped = manifest.groupby(["cohort", "split"], dropna=False)
    return pd.DataFrame(
        {"ecgs": grouped.size(), "patients": grouped["patient_id"].nunique()}
    ).reset_index()
