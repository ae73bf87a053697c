"""Tests that kill mutmut's surviving mutants of cape.pretrain.data (docs/testing.md).

Mutant names are mutmut 3.8.1's (``scripts/mutation.sh pretrain-data``); each docstring names
the mutants the test kills and the bug they stand for. ``xǁPairViewsDatasetǁ`` is shortened to
``Dataset.`` below.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cape.augment import ViewAugmenter
from cape.pretrain.data import PairViewsDataset, make_loader
from cape.samplers import BatchKey, PairBatchSampler, PatientTable

torch.set_num_threads(1)


class Store:
    """In-memory store: ``patients`` patients per cohort of ``ecgs`` ECGs each, every record
    8 leads x ``samples`` distinct values, valid lengths kept as int32 like ``CohortStore``."""

    def __init__(self, cohorts: tuple[str, ...], patients: int, ecgs: int, samples: int) -> None:
        self.manifest = pd.DataFrame(
            [
                {"cohort": c, "patient_id": f"P{p}", "split": "train", "valid_length": samples}
                for c in cohorts
                for p in range(patients)
                for _ in range(ecgs)
            ]
        )
        n = len(self.manifest)
        self.signals = np.arange(n * 8 * samples, dtype=np.float32).reshape(n, 8, samples)
        self.valid_lengths = self.manifest["valid_length"].to_numpy(np.int32)

    def __len__(self) -> int:
        return len(self.manifest)

    def read(self, index: int) -> np.ndarray:
        return self.signals[index].copy()


def small_dataset() -> PairViewsDataset:
    """Three records of 8 leads x 400 samples; whole-record views without masks (no randomness
    in the pixels, so batches can be compared exactly)."""
    augmenter = ViewAugmenter(crop_samples=400, mask_spans=0)
    return PairViewsDataset(Store(("a",), 1, 3, 400), augmenter, seed=3)


def key(
    record_a: list[int],
    record_b: list[int],
    positions: list[int],
    cohorts: np.ndarray | None = None,
    single_cohort: bool = True,
) -> BatchKey:
    return BatchKey(
        epoch=0,
        step=0,
        positions=np.array(positions, dtype=np.int64),
        record_a=np.array(record_a, dtype=np.int64),
        record_b=np.array(record_b, dtype=np.int64),
        cohorts=np.zeros(len(positions), dtype=np.int64) if cohorts is None else cohorts,
        single_cohort=single_cohort,
    )


def loader_setup() -> tuple[PairViewsDataset, PairBatchSampler]:
    store = Store(("a", "b"), 6, 2, 600)
    sampler = PairBatchSampler(PatientTable.from_manifest(store.manifest), 3, "idb", seed=4)
    augmenter = ViewAugmenter(crop_samples=200, mask_spans=1)
    return PairViewsDataset(store, augmenter, seed=4), sampler


def test_valid_lengths_are_held_as_int64() -> None:
    """Kills Dataset.__init____mutmut_6/8 (``dtype=np.int64`` dropped): the store's int32
    lengths (``CohortStore`` and the fake both keep int32) would be kept as they are, so
    arithmetic on the dataset's public ``valid_lengths`` (``valid - crop``) is no longer the
    documented int64 and can wrap for unsigned or narrow stores."""
    dataset = small_dataset()
    assert dataset.store.valid_lengths.dtype == np.int32
    assert dataset.valid_lengths.dtype == np.int64
    np.testing.assert_array_equal(dataset.valid_lengths, [400, 400, 400])


@pytest.mark.parametrize(
    ("record_a", "record_b"),
    [([0, 1], [2]), ([0], [1, 2])],
    ids=["first-views", "second-views"],
)
def test_a_key_whose_records_and_positions_disagree_is_refused(
    record_a: list[int], record_b: list[int]
) -> None:
    """Kills Dataset.__getitem____mutmut_13/16/17 (first views) and _30/33/34 (second views):
    ``zip(..., strict=True)`` loosened, so a malformed key (one more record than positions,
    i.e. a sampler bug) silently drops a patient's view and the batch's two halves no longer
    pair up."""
    dataset = small_dataset()
    with pytest.raises(ValueError, match=r"zip\(\) argument 2 is shorter than argument 1"):
        dataset[key(record_a, record_b, [0])]


def test_batch_keys_and_dtypes_are_exact() -> None:
    """Kills Dataset.__getitem____mutmut_45/47 (``np.asarray(cohorts, dtype=np.int64)`` ->
    no dtype: a sampler's int32 codes reach the loss as an int32 tensor, not the documented
    int64) and _48/49 (the ``single_cohort`` key renamed: the training loop's lookup fails)."""
    dataset = small_dataset()
    cohorts = np.array([2, 0], dtype=np.int32)
    for single in (True, False):
        batch = dataset[key([0, 1], [1, 2], [5, 6], cohorts=cohorts, single_cohort=single)]
        assert set(batch) == {"views", "cohorts", "single_cohort"}
        assert batch["cohorts"].dtype == torch.int64
        assert batch["cohorts"].tolist() == [2, 0]
        assert batch["single_cohort"].dtype == torch.bool
        assert batch["single_cohort"].shape == ()
        assert bool(batch["single_cohort"]) is single
        assert batch["views"].shape == (4, 8, 400)
        assert batch["views"].dtype == torch.float32
        # Whole-record views without masks: first views of records 0, 1 then second of 1, 2.
        signals = dataset.store.signals  # type: ignore[attr-defined]
        np.testing.assert_array_equal(batch["views"].numpy(), signals[[0, 1, 1, 2]])


def test_loader_yields_the_datasets_batches_unwrapped() -> None:
    """Kills x_make_loader__mutmut_10 (``batch_size=None`` dropped): the default
    ``batch_size=1`` wraps every key in a list and collates the dataset's batch into an extra
    leading dimension of size 1, so the encoder would get ``(1, 2n, leads, samples)``."""
    dataset, sampler = loader_setup()
    sampler.set_epoch(1)
    loader = make_loader(dataset, sampler, 0, seed=4)
    assert loader.batch_size is None
    keys = list(sampler)
    batches = list(loader)
    assert len(batches) == len(keys) == sampler.steps_per_epoch
    for k, batch in zip(keys, batches, strict=True):
        expected = dataset[k]
        assert set(batch) == set(expected)
        for name in expected:
            assert batch[name].shape == expected[name].shape, name
            torch.testing.assert_close(batch[name], expected[name], rtol=0, atol=0)


def test_loader_does_not_consume_the_global_rng_and_is_seeded() -> None:
    """Kills x_make_loader__mutmut_8/16 (``generator=`` None / dropped): starting an epoch then
    draws the workers' base seed from the global torch RNG, which dropout uses, so a resumed
    run diverges from an uninterrupted one (the docstring's reason for the generator)."""
    dataset, sampler = loader_setup()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    loader = make_loader(dataset, sampler, 0, seed=17)
    for _ in loader:
        pass
    torch.testing.assert_close(torch.get_rng_state(), before, rtol=0, atol=0)
    assert isinstance(loader.generator, torch.Generator)
    assert loader.generator.initial_seed() == 17


def test_pin_memory_default_and_pass_through() -> None:
    """Kills x_make_loader__mutmut_1 (default ``pin_memory=True``: every CPU run pins, with a
    warning and wasted page-locked memory), _5 (``pin_memory=None``) and _13 (argument dropped:
    a GPU run never pins, and host-to-device copies are not asynchronous)."""
    dataset, sampler = loader_setup()
    assert make_loader(dataset, sampler, 0, seed=0).pin_memory is False
    assert make_loader(dataset, sampler, 0, seed=0, pin_memory=True).pin_memory is True
    assert make_loader(dataset, sampler, 0, seed=0, pin_memory=False).pin_memory is False


@pytest.mark.parametrize("workers", [1, 2])
def test_worker_loaders_persist_and_prefetch_four_batches(workers: int) -> None:
    """Kills x_make_loader__mutmut_6/14 (``persistent_workers`` None / dropped: workers, and
    each one's store handle, restarted every epoch), _18 (``num_workers > 1``: one worker not
    persistent), _7/15/19 (``prefetch_factor`` None / dropped / always None: torch's default
    of 2), _21 (5 instead of 4) and _23 (``num_workers > 1``: one worker prefetches 2)."""
    dataset, sampler = loader_setup()
    loader = make_loader(dataset, sampler, workers, seed=0)
    assert loader.num_workers == workers
    assert loader.persistent_workers is True
    assert loader.prefetch_factor == 4


def test_in_process_loader_neither_persists_nor_prefetches() -> None:
    """The other side of the ``num_workers > 0`` switches (torch refuses both options without
    workers): pins ``persistent_workers`` False and ``prefetch_factor`` None at 0 workers."""
    dataset, sampler = loader_setup()
    loader = make_loader(dataset, sampler, 0, seed=0)
    assert loader.persistent_workers is False
    assert loader.prefetch_factor is None
