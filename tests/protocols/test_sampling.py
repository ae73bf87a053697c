"""Seeded sampling inside the patient-level splits, with capping and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from cape.errors import CapeError
from cape.protocols import derive_seed, draw_splits, plan_sizes, split_pools
from cape.protocols.sampling import MIN_PER_SPLIT, draw

from .synthetic import make_index


def test_derive_seed_is_stable_and_separates_names():
    assert derive_seed(0, "A", 1) == derive_seed(0, "A", 1)
    assert (
        len(
            {
                derive_seed(0, "A", 1),
                derive_seed(0, "B", 1),
                derive_seed(1, "A", 1),
                derive_seed(0, "A", 2),
            }
        )
        == 4
    )
    with pytest.raises(ValueError):
        derive_seed(-1)


def test_pools_follow_split_and_labels_and_samples_are_patient_disjoint():
    index = make_index({"A": 60, "B": 20}, ecgs_per_patient=3)
    labelled = np.ones(len(index), dtype=bool)
    labelled[::7] = False
    pools = split_pools(index, "A", labelled)
    for name, positions in pools.items():
        assert (index.loc[positions, "split"] == name).all()
        assert (index.loc[positions, "cohort"] == "A").all()
        assert labelled[positions].all()
    plan = plan_sizes(pools, (50, 20, 20), "cohort 'A'")
    sample = draw_splits(pools, plan, seed=3)
    patients = {k: set(index.loc[v, "patient_id"]) for k, v in sample.items()}
    assert not (patients["train"] & patients["test"]) and not (patients["train"] & patients["val"])
    assert {k: v.size for k, v in sample.items()} == plan.sizes
    again = draw_splits(pools, plan, seed=3)
    other = draw_splits(pools, plan, seed=4)
    assert all(np.array_equal(sample[k], again[k]) for k in sample)
    assert not np.array_equal(sample["train"], other["train"])


def test_sizes_are_capped_with_the_counts_or_rejected_when_strict():
    pools = {"train": np.arange(30), "val": np.arange(30, 40), "test": np.arange(40, 52)}
    plan = plan_sizes(pools, (100, None, 5), "cohort 'A', task 'age'")
    assert plan.sizes == {"train": 30, "val": 10, "test": 5}
    assert len(plan.messages) == 1 and "holds 30" in plan.messages[0]
    assert "100 requested" in plan.messages[0]
    with pytest.raises(CapeError, match=r"split 'train' holds 30, 100 requested"):
        plan_sizes(pools, (100, None, 5), "cohort 'A', task 'age'", strict=True)


def test_a_nearly_empty_split_is_an_error_naming_the_counts():
    pools = {"train": np.arange(30), "val": np.arange(30, 32), "test": np.arange(40, 52)}
    with pytest.raises(
        CapeError, match=rf"'val' holds 2 \(need at least {MIN_PER_SPLIT}.*train 30, val 2, test 12"
    ):
        plan_sizes(pools, (10, 10, 10), "cohort 'A', task 'sex'")


def test_draw_without_replacement_from_the_pool():
    pool = np.arange(100, 200)
    drawn = draw(pool, 40, seed=1)
    assert np.unique(drawn).size == 40 and np.isin(drawn, pool).all()
    np.testing.assert_array_equal(draw(pool, 100, seed=1), pool)
    with pytest.raises(ValueError):
        draw(pool, 101, seed=1)


def test_cohort_without_split_is_an_error():
    index = make_index({"A": 10})
    index["split"] = None
    with pytest.raises(CapeError, match=r"no train/val/test split.*cape split"):
        split_pools(index, "A", np.ones(len(index), dtype=bool))
