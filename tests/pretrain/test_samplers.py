"""Patient selection, pair draws and batch plans (random, idb, idb-mask; distributed)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from cape.errors import CapeError
from cape.samplers import PairBatchSampler, PatientTable, draw_pairs, plan_epoch

from .helpers import make_manifest


def manifest() -> pd.DataFrame:
    return make_manifest(
        {"a": 40, "b": 25, "c": 9}, ecgs_per_patient=(1, 4), seed=0, test_fraction=0.2
    )


def test_table_keeps_patients_with_two_ecgs_outside_excluded_splits() -> None:
    frame = manifest()
    table = PatientTable.from_manifest(frame)
    seen = set()
    for p in range(table.n_patients):
        rows = frame.loc[table.records[table.offsets[p] : table.offsets[p + 1]]]
        assert len(rows) >= 2
        assert rows["patient_id"].nunique() == 1 and rows["cohort"].nunique() == 1
        assert (rows["split"] != "test").all()
        assert rows["cohort"].iloc[0] == table.cohort_names[table.patient_cohort[p]]
        seen.add((rows["cohort"].iloc[0], rows["patient_id"].iloc[0]))
    kept = frame[frame["split"] != "test"].groupby(["cohort", "patient_id"]).size()
    assert seen == set(kept[kept >= 2].index)
    with_test = PatientTable.from_manifest(frame, exclude_splits=())
    assert with_test.n_patients > table.n_patients


def test_same_patient_id_in_two_cohorts_is_two_patients() -> None:
    frame = pd.DataFrame(
        {"cohort": ["a", "a", "b", "b"], "patient_id": ["P1"] * 4, "split": ["train"] * 4}
    )
    table = PatientTable.from_manifest(frame)
    assert table.n_patients == 2
    assert table.patients_per_cohort() == {"a": 1, "b": 1}


def test_missing_patient_ids_are_not_paired() -> None:
    frame = pd.DataFrame({"cohort": ["a"] * 4, "patient_id": [None, None, "x", "x"]})
    table = PatientTable.from_manifest(frame, exclude_splits=())
    assert table.n_patients == 1 and list(table.records) == [2, 3]


def test_table_errors() -> None:
    frame = manifest()
    with pytest.raises(CapeError, match=r"cohorts \['zz'\] are not in the store"):
        PatientTable.from_manifest(frame, cohorts=["a", "zz"])
    single = pd.DataFrame({"cohort": ["a", "a"], "patient_id": ["1", "2"]})
    with pytest.raises(CapeError, match="no patient with at least two ECGs"):
        PatientTable.from_manifest(single, exclude_splits=())


def test_pairs_are_two_distinct_ecgs_of_the_patient_and_seeded() -> None:
    table = PatientTable.from_manifest(manifest())
    pairs = draw_pairs(table, seed=3, epoch=0)
    for p, (i, j) in enumerate(pairs):
        own = table.records[table.offsets[p] : table.offsets[p + 1]]
        assert i != j and i in own and j in own
    np.testing.assert_array_equal(pairs, draw_pairs(table, seed=3, epoch=0))
    assert not np.array_equal(pairs, draw_pairs(table, seed=3, epoch=1))
    assert not np.array_equal(pairs, draw_pairs(table, seed=4, epoch=0))


def test_pairs_are_uniform_over_ordered_pairs() -> None:
    frame = pd.DataFrame({"cohort": ["a"] * 3, "patient_id": ["x"] * 3})
    table = PatientTable.from_manifest(frame, exclude_splits=())
    counts = Counter(tuple(draw_pairs(table, 0, epoch)[0]) for epoch in range(3000))
    assert set(counts) == {(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)}
    assert all(abs(c - 500) < 100 for c in counts.values())  # ~5 sd of a binomial(3000, 1/6)


def test_random_plan_uses_each_patient_at_most_once_and_mixes_cohorts() -> None:
    table = PatientTable.from_manifest(manifest())
    plan = plan_epoch(table, 8, "random", seed=0, epoch=0)
    assert plan.shape == (table.n_patients // 8, 8)
    assert len(np.unique(plan)) == plan.size
    mixed = [len(set(table.patient_cohort[row])) > 1 for row in plan]
    assert any(mixed)
    np.testing.assert_array_equal(plan, plan_epoch(table, 8, "random", seed=0, epoch=0))
    np.testing.assert_array_equal(plan, plan_epoch(table, 8, "idb-mask", seed=0, epoch=0))


def test_idb_plan_has_single_cohort_batches_in_proportion() -> None:
    table = PatientTable.from_manifest(manifest())
    batch = 4
    per_cohort = table.patients_per_cohort()
    plan = plan_epoch(table, batch, "idb", seed=1, epoch=2)
    cohorts_of_batches = []
    for row in plan:
        codes = set(table.patient_cohort[row])
        assert len(codes) == 1
        cohorts_of_batches.append(table.cohort_names[codes.pop()])
    assert len(np.unique(plan)) == plan.size
    assert Counter(cohorts_of_batches) == {c: n // batch for c, n in per_cohort.items()}
    # Interleaved, not cohort after cohort: the sequence is not sorted by cohort.
    assert cohorts_of_batches != sorted(cohorts_of_batches)


def test_idb_small_cohort_is_an_error_or_dropped() -> None:
    table = PatientTable.from_manifest(manifest())
    sizes = table.patients_per_cohort()
    batch = sizes["c"] + 1
    assert batch <= min(sizes["a"], sizes["b"])
    with pytest.raises(CapeError, match=r"cohorts \['c'\] have fewer"):
        PairBatchSampler(table, batch, "idb")
    sampler = PairBatchSampler(table, batch, "idb", small_cohorts="drop")
    assert sampler.skip_cohorts == ("c",)
    cohort_c = table.cohort_names.index("c")
    assert all((key.cohorts != cohort_c).all() for key in sampler)
    # The random plan still uses cohort c.
    assert any((key.cohorts == cohort_c).any() for key in PairBatchSampler(table, batch, "random"))


def test_batch_size_errors() -> None:
    table = PatientTable.from_manifest(manifest())
    with pytest.raises(CapeError, match="larger than the"):
        PairBatchSampler(table, table.n_patients + 1)
    with pytest.raises(CapeError, match="multiple of the number of processes"):
        PairBatchSampler(table, 6, world_size=4)
    with pytest.raises(ValueError, match="batching"):
        PairBatchSampler(table, 4, "mixed")  # type: ignore[arg-type]


@pytest.mark.parametrize("batching", ["random", "idb", "idb-mask"])
def test_ranks_take_slices_of_the_same_global_batch(batching: str) -> None:
    table = PatientTable.from_manifest(manifest())
    options = {"batching": batching, "seed": 5, "small_cohorts": "drop"}
    single = PairBatchSampler(table, 8, **options)  # type: ignore[arg-type]
    ranks = [PairBatchSampler(table, 8, rank=r, world_size=2, **options) for r in range(2)]  # type: ignore[arg-type]
    for sampler in [single, *ranks]:
        sampler.set_epoch(3)
    for full, *parts in zip(single, *ranks, strict=True):
        np.testing.assert_array_equal(full.record_a, np.concatenate([p.record_a for p in parts]))
        np.testing.assert_array_equal(full.record_b, np.concatenate([p.record_b for p in parts]))
        np.testing.assert_array_equal(full.positions, np.concatenate([p.positions for p in parts]))
        assert all(p.single_cohort == full.single_cohort for p in parts)
        if batching == "idb":
            assert len(set(np.concatenate([p.cohorts for p in parts]))) == 1


def test_keys_cover_the_epoch_and_resume_mid_epoch() -> None:
    table = PatientTable.from_manifest(manifest())
    sampler = PairBatchSampler(table, 4, "idb", seed=2)
    sampler.set_epoch(1)
    keys = list(sampler)
    assert len(keys) == sampler.steps_per_epoch == len(sampler)
    positions = np.concatenate([k.positions for k in keys])
    np.testing.assert_array_equal(positions, np.arange(4 * len(keys)))
    sampler.set_epoch(1, start_step=3)
    assert len(sampler) == len(keys) - 3
    for resumed, original in zip(sampler, keys[3:], strict=True):
        assert resumed.step == original.step
        np.testing.assert_array_equal(resumed.record_a, original.record_a)
        np.testing.assert_array_equal(resumed.positions, original.positions)


def test_unsplit_ecgs_cannot_honour_exclusions() -> None:
    frame = pd.DataFrame(
        {
            "cohort": ["a"] * 4,
            "patient_id": ["x", "x", "y", "y"],
            "split": ["train", "train", None, None],
        }
    )
    with pytest.raises(CapeError, match="have no split"):
        PatientTable.from_manifest(frame)
    assert PatientTable.from_manifest(frame, exclude_splits=()).n_patients == 2
