"""Tests that kill mutmut's surviving mutants of cape.samplers (docs/testing.md).

Mutant names are mutmut 3.8.1's (``scripts/mutation.sh samplers``), written without the
``cape.samplers.`` prefix; each docstring names the mutants the test kills.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd
import pytest

from cape.errors import CapeError
from cape.samplers import (
    BATCHES_STREAM,
    PAIRS_STREAM,
    PairBatchSampler,
    PatientTable,
    draw_pairs,
    plan_epoch,
    stream_rng,
)


def table(per_cohort: dict[str, int], ecgs: int = 3) -> PatientTable:
    rows = [
        {"cohort": cohort, "patient_id": f"p{p}"}
        for cohort, n in per_cohort.items()
        for p in range(n)
        for _ in range(ecgs)
    ]
    return PatientTable.from_manifest(pd.DataFrame(rows), exclude_splits=())


def test_fingerprint_is_the_documented_hash() -> None:
    """Kills xǁPatientTableǁfingerprint__mutmut_1..10 (never called by the sampler tests): the
    hash of cohort names and int64 arrays, cut to 16 hex digits, that names a selection."""
    t = table({"a": 2, "b": 3})
    digest = hashlib.sha256()
    digest.update(b"a\x1fb")
    for array in (t.patient_cohort, t.offsets, t.records):
        digest.update(np.asarray(array, dtype=np.int64).tobytes())
    assert t.fingerprint() == digest.hexdigest()[:16]
    assert table({"a": 2, "b": 3}, ecgs=2).fingerprint() != t.fingerprint()


def test_draws_use_their_own_seeded_streams() -> None:
    """Kills x_draw_pairs__mutmut_6 and x_plan_epoch__mutmut_5/6/7 (the stream constant, the
    seed or the epoch left out of the generator's entropy: pairs and batch plans would repeat
    across seeds or epochs, or share one stream)."""
    t = table({"a": 6, "b": 5})
    rng = stream_rng(7, PAIRS_STREAM, 2)
    counts = np.diff(t.offsets)
    first = rng.integers(0, counts)
    second = rng.integers(0, counts - 1)
    second += second >= first
    expected = np.stack([t.records[t.offsets[:-1] + first], t.records[t.offsets[:-1] + second]], 1)
    np.testing.assert_array_equal(draw_pairs(t, 7, 2), expected)
    order = stream_rng(7, BATCHES_STREAM, 2).permutation(t.n_patients)
    np.testing.assert_array_equal(plan_epoch(t, 4, "random", 7, 2), order[:8].reshape(2, 4))


def test_sampler_defaults_and_rank_bounds() -> None:
    """Kills xǁPairBatchSamplerǁ__init____mutmut_3 (default seed 1), _13.._16 (rank ==
    world_size accepted, message dropped or off by one), _24 (skip_cohorts None), _55
    (world_size None), _59/_61 (first epoch or step not 0) and __iter____mutmut_38/40
    (positions not int64)."""
    t = table({"a": 6, "b": 5})
    with pytest.raises(ValueError, match=r"^rank 2 outside 0\.\.1$"):
        PairBatchSampler(t, 4, rank=2, world_size=2)
    sampler = PairBatchSampler(t, 4, rank=1, world_size=2)
    assert (sampler.seed, sampler.world_size, sampler.skip_cohorts) == (0, 2, ())
    assert (sampler.epoch, sampler.start_step, len(sampler)) == (0, 0, sampler.steps_per_epoch)
    keys = list(sampler)
    assert [k.step for k in keys] == list(range(sampler.steps_per_epoch))
    assert keys[0].epoch == 0
    assert keys[0].positions.dtype == np.int64
    np.testing.assert_array_equal(keys[0].positions, [2, 3])
    np.testing.assert_array_equal(sampler.plan(0), plan_epoch(t, 4, "random", 0, 0))


def test_set_epoch_accepts_the_end_and_names_bad_steps() -> None:
    """Kills xǁPairBatchSamplerǁset_epoch__mutmut_5 (resuming at the very end refused) and _6
    (message dropped)."""
    sampler = PairBatchSampler(table({"a": 6, "b": 5}), 4)
    sampler.set_epoch(1, sampler.steps_per_epoch)
    assert len(sampler) == 0 and list(sampler) == []
    with pytest.raises(ValueError, match=rf"^start_step 9 outside 0\.\.{sampler.steps_per_epoch}$"):
        sampler.set_epoch(1, 9)


def test_idb_small_cohort_messages(caplog: pytest.LogCaptureFixture) -> None:
    """Kills xǁPairBatchSamplerǁ__init____mutmut_38/39 (error hint altered), _41.._44 (warning
    altered) and _47 (message dropped when every cohort is too small)."""
    t = table({"a": 6, "b": 2})
    with pytest.raises(CapeError, match=r"with `cohorts`, or set small_cohorts=drop$"):
        PairBatchSampler(t, 4, "idb")
    with caplog.at_level(logging.WARNING, logger="cape.samplers"):
        PairBatchSampler(t, 4, "idb", small_cohorts="drop")
    assert "idb: leaving out cohorts smaller than one batch: ['b']" in caplog.messages
    with pytest.raises(CapeError, match=r"^batching=idb: no cohort has 4 eligible patients$"):
        PairBatchSampler(table({"a": 3, "b": 3}), 4, "idb", small_cohorts="drop")


def manifest(rows: list[tuple[str, object, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["cohort", "patient_id", "split"])


def test_per_cohort_exclusion_leaves_out_only_that_cohorts_split() -> None:
    """Kills x_excluded_splits__mutmut_2..6 and xǁPatientTableǁfrom_manifest__mutmut_47/78 (a
    mapping's splits not looked up for the cohort, or applied to the other cohorts): only
    cohort a's test ECGs are left out."""
    m = manifest(
        [("a", "p", "train"), ("a", "p", "test"), ("a", "p", "train"),
         ("b", "q", "test"), ("b", "q", "test")]
    )  # fmt: skip
    t = PatientTable.from_manifest(m, exclude_splits={"a": ["test"]})
    assert t.records.tolist() == [0, 2, 3, 4]
    assert t.patients_per_cohort() == {"a": 1, "b": 1}


def test_rows_without_a_patient_id_are_skipped() -> None:
    """Kills xǁPatientTableǁfrom_manifest__mutmut_23/30/31/33 (rows with a missing or empty
    patient id, or of an unchosen cohort, kept as a patient)."""
    m = manifest(
        [("a", None, "train"), ("a", None, "train"), ("a", "", "train"), ("a", "", "train"),
         ("a", "p", "train"), ("a", "p", "train"), ("b", "q", "train"), ("b", "q", "train")]
    )  # fmt: skip
    t = PatientTable.from_manifest(m, cohorts=["a"], exclude_splits=())
    assert t.records.tolist() == [4, 5]


def test_manifest_errors_name_the_problem() -> None:
    """Kills xǁPatientTableǁfrom_manifest__mutmut_34..43 (unknown cohorts of exclude_splits not
    reported, or the setting not shown), _53.._61/_72/_73 (a store without a split column, and
    the hint) and _138.._140 (no-repeat-ECG hint)."""
    m = manifest([("a", "p", "train"), ("a", "p", "train")])
    with pytest.raises(CapeError, match=r"^exclude_splits names cohorts \['z'\] that are not in"):
        PatientTable.from_manifest(m, exclude_splits={"z": ["test"]})
    no_split = m.drop(columns="split")
    with pytest.raises(CapeError) as info:
        PatientTable.from_manifest(no_split, exclude_splits=["test"])
    assert str(info.value) == (
        "2 ECGs of the chosen cohorts have no split, so exclude_splits=['test'] cannot be "
        "honoured; run `cape split` on the store first (or set exclude_splits=[] to pretrain "
        "on everything)"
    )
    with pytest.raises(CapeError, match=r"pretraining needs repeat ECGs$"):
        PatientTable.from_manifest(manifest([("a", "p", "train")]), exclude_splits=())


def test_empty_selection_and_cohort_without_patients() -> None:
    """Kills xǁPatientTableǁfrom_manifest__mutmut_120/121/123/126/127/129..131/133/135 (the
    empty-selection branch; _119/122/124/125/128/132/134 are equivalent, docs/testing.md) and
    xǁPatientTableǁpatients_per_cohort__mutmut_5 (``minlength`` dropped: a chosen cohort whose
    patients all have one ECG disappears from the counts)."""
    with pytest.raises(CapeError) as info:
        PatientTable.from_manifest(manifest([("a", None, "train")]), exclude_splits=())
    assert str(info.value) == (
        "no patient with at least two ECGs in cohorts ['a'] (excluding splits []); "
        "patient-contrastive pretraining needs repeat ECGs"
    )
    m = manifest([("a", "p", "train"), ("a", "p", "train"), ("b", "q", "train")])
    assert PatientTable.from_manifest(m, exclude_splits=()).patients_per_cohort() == {
        "a": 1,
        "b": 0,
    }


def test_plan_epoch_names_an_unknown_batching() -> None:
    """Kills x_plan_epoch__mutmut_25 (the message of an unknown batching dropped: plan_epoch is
    public, and its caller would see a bare ValueError)."""
    with pytest.raises(ValueError, match=r"^batching must be one of .*, got 'cape-x'$"):
        plan_epoch(table({"a": 4}), 2, "cape-x", 0, 0)  # type: ignore[arg-type]


def test_idb_plan_when_every_cohort_is_skipped_is_empty() -> None:
    """Kills x_plan_epoch__mutmut_45.._51 (the empty plan when every cohort is skipped: it must
    be ``(0, B)`` int64, not an error from concatenating nothing, a float array or a row of
    zeros that would index patient 0). The sampler refuses this case; plan_epoch is public."""
    t = table({"a": 4, "b": 3})
    plan = plan_epoch(t, 2, "idb", 0, 0, skip_cohorts=("a", "b"))
    assert plan.shape == (0, 2)
    assert plan.dtype == np.int64
    # Skipping only one cohort keeps the other's full batches.
    kept = plan_epoch(t, 2, "idb", 0, 0, skip_cohorts=("b",))
    assert kept.shape == (2, 2)
    assert sorted(kept.ravel().tolist()) == [0, 1, 2, 3]


def test_mapping_exclusion_is_shown_as_given() -> None:
    """Kills xǁPatientTableǁfrom_manifest__mutmut_41 (a mapping of excluded splits shown as the
    list of its keys: the message would hide which splits are left out)."""
    m = manifest([("a", "p", None), ("a", "p", "train")])
    with pytest.raises(CapeError) as info:
        PatientTable.from_manifest(m, exclude_splits={"a": ["test"]})
    assert str(info.value).startswith(
        "1 ECGs of the chosen cohorts have no split, so exclude_splits={'a': ['test']} cannot"
    )
    with pytest.raises(CapeError) as info:
        PatientTable.from_manifest(
            manifest([("a", "p", "test"), ("a", "p", "test")]), exclude_splits={"a": ["test"]}
        )
    assert "(excluding splits {'a': ['test']})" in str(info.value)
