"""Selecting the run's ECGs: patient-level splits, the training fraction, tasks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cape.errors import CapeError
from cape.finetune import resolve_task, select, subsample_patients
from cape.store import CohortStore

from .helpers import CODES


def _train_patients(store: CohortStore, fraction: float, seed: int) -> set[tuple[str, str]]:
    selection = select(store.manifest, "age", train_fraction=fraction, seed=seed)
    rows = store.manifest.loc[selection.records["train"]]
    return set(zip(rows["cohort"], rows["patient_id"], strict=True))


def test_train_fraction_keeps_whole_patients_nested_per_cohort(store: CohortStore) -> None:
    """A fraction keeps round(F x patients) of *each* cohort's training patients with all
    their ECGs; smaller fractions are subsets of larger ones for one seed; another seed
    draws others; validation and test are untouched.

    Bugs caught: subsampling ECGs instead of patients (a patient's ECGs split between
    kept and dropped); fractions of the pooled cohorts (a small cohort can vanish);
    unseeded or non-nested draws (label-efficiency curves would mix subsets).
    """
    manifest = store.manifest
    train = manifest[manifest["split"] == "train"]
    per_cohort = train.groupby("cohort")["patient_id"].nunique()
    full = _train_patients(store, 1.0, 0)
    previous = full
    for fraction in (0.75, 0.5, 0.25, 0.01):
        kept = _train_patients(store, fraction, 0)
        assert kept <= previous
        for cohort, n in per_cohort.items():
            assert sum(c == cohort for c, _ in kept) == max(1, round(fraction * n))
        previous = kept
    half = select(manifest, "age", train_fraction=0.5, seed=0)
    whole = select(manifest, "age")
    records = manifest.loc[half.records["train"]]
    for (cohort, patient), group in records.groupby(["cohort", "patient_id"]):
        every = train[(train["cohort"] == cohort) & (train["patient_id"] == patient)]
        assert len(group) == len(every)
    assert _train_patients(store, 0.5, 1) != _train_patients(store, 0.5, 0)
    for split in ("val", "test"):
        np.testing.assert_array_equal(half.records[split], whole.records[split])
    used = half.counts.set_index(["cohort", "split"])["used"]
    assert used.xs("train", level="split").sum() == len(half.records["train"])


def test_subsample_is_deterministic_and_rejects_nothing_at_one() -> None:
    patients = pd.Series([f"p{i // 2}" for i in range(40)])
    cohorts = pd.Series(["x"] * 40)
    a = subsample_patients(patients, cohorts, 0.3, seed=5)
    b = subsample_patients(patients, cohorts, 0.3, seed=5)
    np.testing.assert_array_equal(a, b)
    assert a.sum() == 2 * 6  # 6 of 20 patients, two ECGs each
    assert subsample_patients(patients, cohorts, 1.0, seed=5).all()


def test_targets_follow_the_manifest_for_each_task(store: CohortStore) -> None:
    """Targets equal the manifest's labels row by row: age in years, 1 for male, and
    multi-hot codes in the order of the label names (taken from the training split).
    """
    manifest = store.manifest
    age = select(manifest, "age")
    np.testing.assert_array_equal(
        age.targets["val"][:, 0], manifest.loc[age.records["val"], "age"].to_numpy()
    )
    sex = select(manifest, "sex")
    np.testing.assert_array_equal(
        sex.targets["test"][:, 0], (manifest.loc[sex.records["test"], "sex"] == "M").to_numpy()
    )
    diagnoses = select(manifest, "diagnoses")
    assert diagnoses.task.kind == "multilabel" and diagnoses.label_names == CODES
    for row, record in enumerate(diagnoses.records["train"]):
        codes = list(manifest.loc[record, "diagnoses"])
        expected = [float(code in codes) for code in CODES]
        np.testing.assert_array_equal(diagnoses.targets["train"][row], expected)


def test_superclass_task_and_unusable_rows() -> None:
    """The protocols' superclass task reads ``superclasses``; missing and empty label lists
    and missing ages are left out of every split, never imputed."""
    rows = []
    for p in range(30):
        split = ("train", "val", "test")[p % 3]
        superclasses = [["NORM"], ["MI", "STTC"], [], None][p % 4]
        rows.append(
            {
                "record_id": f"r{p}",
                "patient_id": f"p{p}",
                "cohort": "c",
                "split": split,
                "age": np.nan if p == 4 else 40.0 + p,
                "superclasses": superclasses,
            }
        )
    manifest = pd.DataFrame(rows)
    selection = select(manifest, "superclass")
    assert selection.task.metric == "macro_auroc"
    kept = np.concatenate([selection.records[s] for s in ("train", "val", "test")])
    assert all(isinstance(manifest.loc[k, "superclasses"], list) for k in kept)
    assert all(len(manifest.loc[k, "superclasses"]) > 0 for k in kept)
    age = select(manifest, "age")
    assert 4 not in np.concatenate([age.records[s] for s in ("train", "val", "test")])


def test_patients_in_two_splits_are_refused(store: CohortStore) -> None:
    manifest = store.manifest.copy()
    first = manifest.index[manifest["split"] == "train"][0]
    patient = manifest.loc[first, ["cohort", "patient_id"]]
    rows = (manifest["cohort"] == patient["cohort"]) & (
        manifest["patient_id"] == patient["patient_id"]
    )
    manifest.loc[manifest.index[rows][-1], "split"] = "test"
    with pytest.raises(CapeError, match="more than one split"):
        select(manifest, "age")


def test_unknown_tasks_are_refused(store: CohortStore) -> None:
    with pytest.raises(CapeError, match="unknown task 'height'"):
        resolve_task("height", store.manifest)
    with pytest.raises(CapeError, match="holds no lists"):
        resolve_task("record_id", store.manifest)
    with pytest.raises(CapeError, match=r"train_fraction must be in \(0, 1\]"):
        select(store.manifest, "age", train_fraction=0.0)
