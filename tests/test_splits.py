import numpy as np
import pandas as pd
import pytest

from cape.splits import assign_splits, check_patient_disjoint


def _manifest(n_patients=200, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for k in range(rng.integers(1, 5)):
            rows.append(
                {"cohort": "a" if p % 2 else "b", "patient_id": f"p{p}", "record_id": f"{p}-{k}"}
            )
    return pd.DataFrame(rows)


def test_no_patient_in_two_splits_and_fractions():
    manifest = _manifest()
    manifest["split"] = assign_splits(manifest, (0.6, 0.2, 0.2), seed=1)
    check_patient_disjoint(manifest)
    per_patient = manifest.groupby(["cohort", "patient_id"])["split"].first()
    fractions = per_patient.value_counts(normalize=True)
    assert fractions["train"] == pytest.approx(0.6, abs=0.02)
    assert fractions["test"] == pytest.approx(0.2, abs=0.02)


def test_deterministic_for_a_seed_and_changes_with_seed():
    manifest = _manifest()
    a = assign_splits(manifest, seed=3)
    b = assign_splits(manifest, seed=3)
    c = assign_splits(manifest, seed=4)
    pd.testing.assert_series_equal(a, b)
    assert not a.equals(c)


def test_adding_a_cohort_does_not_move_other_cohorts():
    manifest = _manifest()
    a = assign_splits(manifest, seed=0)
    extra = pd.DataFrame(
        {"cohort": ["c"] * 5, "patient_id": list("vwxyz"), "record_id": list("12345")}
    )
    b = assign_splits(pd.concat([manifest, extra], ignore_index=True), seed=0)
    pd.testing.assert_series_equal(a, b.iloc[: len(manifest)])


def test_existing_splits_are_kept_for_new_ecgs_of_known_patients():
    manifest = _manifest()
    manifest["split"] = assign_splits(manifest, seed=0)
    new_row = manifest.iloc[[0]].copy()
    new_row["record_id"] = "new"
    new_row["split"] = None
    grown = pd.concat([manifest, new_row], ignore_index=True)
    again = assign_splits(grown, seed=99)
    assert again.iloc[-1] == manifest["split"].iloc[0]
    pd.testing.assert_series_equal(again.iloc[:-1], manifest["split"], check_names=False)


def test_strat_fold_respected():
    manifest = pd.DataFrame(
        {
            "cohort": "ptb",
            "patient_id": ["1", "1", "2", "3"],
            "record_id": list("abcd"),
            "strat_fold": [3, 3, 9, 10],
        }
    )
    assert list(assign_splits(manifest)) == ["train", "train", "val", "test"]


def test_overlap_detected():
    manifest = pd.DataFrame({"cohort": "a", "patient_id": ["1", "1"], "split": ["train", "test"]})
    with pytest.raises(ValueError, match="more than one split"):
        check_patient_disjoint(manifest)


def test_bad_fractions():
    with pytest.raises(ValueError, match="sum to 1"):
        assign_splits(_manifest(), (0.5, 0.2, 0.2))
