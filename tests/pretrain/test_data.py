"""The Dataset over the store: views come from the right ECGs, seeded per sample."""

from __future__ import annotations

import numpy as np
import torch

from cape.augment import ViewAugmenter
from cape.pretrain.data import PairViewsDataset, make_loader
from cape.samplers import AUGMENT_STREAM, BatchKey, PairBatchSampler, PatientTable, stream_rng

from .helpers import FakeStore, fake_store, make_manifest

torch.set_num_threads(1)


def setup(mask_spans: int = 2) -> tuple[PairViewsDataset, PairBatchSampler]:
    store = fake_store({"a": 12, "b": 10}, seed=1, ecgs_per_patient=(2, 3))
    table = PatientTable.from_manifest(store.manifest)
    sampler = PairBatchSampler(table, 4, "idb", seed=9)
    augmenter = ViewAugmenter(crop_samples=800, mask_spans=mask_spans)
    return PairViewsDataset(store, augmenter, seed=9), sampler


def test_views_are_crops_of_the_keyed_records() -> None:
    dataset, sampler = setup(mask_spans=0)
    key = next(iter(sampler))
    batch = dataset[key]
    n = len(key.positions)
    assert batch["views"].shape == (2 * n, 8, 800) and batch["views"].dtype == torch.float32
    np.testing.assert_array_equal(batch["cohorts"].numpy(), key.cohorts)
    signals = dataset.store.signals  # type: ignore[attr-defined]
    for k in range(n):
        for view, record in (
            (batch["views"][k], key.record_a[k]),
            (batch["views"][n + k], key.record_b[k]),
        ):
            source = signals[record]
            valid = dataset.valid_lengths[record]
            windows = np.lib.stride_tricks.sliding_window_view(source[:, :valid], 800, axis=1)
            matches = (windows == view.numpy()[:, None, :]).all(axis=(0, 2))
            assert matches.any()


def test_views_depend_only_on_seed_epoch_and_position() -> None:
    dataset, sampler = setup()
    key = next(iter(sampler))
    first = dataset[key]["views"]
    torch.testing.assert_close(dataset[key]["views"], first, rtol=0, atol=0)
    # The two views of a patient differ and masks are present.
    assert not torch.equal(first[0], first[len(key.positions)])
    assert (first == 0).any()


def test_loader_output_is_the_same_with_and_without_workers() -> None:
    dataset, sampler = setup()
    sampler.set_epoch(2)
    without = [batch["views"] for batch in make_loader(dataset, sampler, 0, seed=9)]
    with_workers = [batch["views"] for batch in make_loader(dataset, sampler, 2, seed=9)]
    assert len(without) == sampler.steps_per_epoch
    for a, b in zip(without, with_workers, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def ramp_dataset(mask_spans: int) -> PairViewsDataset:
    """Two records whose samples hold their own index, so a view reveals its crop start."""
    manifest = make_manifest({"a": 1}, ecgs_per_patient=2, valid_lengths=(4000,))
    signals = np.broadcast_to(1.0 + np.arange(4000, dtype=np.float32), (2, 8, 4000)).copy()
    augmenter = ViewAugmenter(crop_samples=800, mask_spans=mask_spans, mask_probability=1.0)
    return PairViewsDataset(FakeStore(signals, manifest), augmenter, seed=9)


def key_for(record: int, epoch: int, position: int) -> BatchKey:
    one = np.array([record], dtype=np.int64)
    return BatchKey(
        epoch=epoch,
        step=0,
        positions=np.array([position], dtype=np.int64),
        record_a=one,
        record_b=one,
        cohorts=np.zeros(1, dtype=np.int64),
        single_cohort=True,
    )


def test_crops_and_masks_change_with_epoch_and_position() -> None:
    """Each (epoch, position) gets its own crop and mask, exactly as documented.

    Mutation caught: the augmentation generator seeded without epoch and
    position (``stream_rng(seed, AUGMENT_STREAM, view_index)`` in
    ``PairViewsDataset.view``, or ``__getitem__`` passing a constant epoch or
    position) -- every sample of every epoch would get the same crop and mask.
    With one record and 3201 possible crop starts, 5 epochs x 5 positions of
    independent draws repeat a start with probability < 0.1 (birthday bound
    25 * 24 / 2 / 3201); under the mutation all 25 starts are one.
    """
    dataset = ramp_dataset(mask_spans=0)
    starts = {
        (epoch, position): int(dataset[key_for(0, epoch, position)]["views"][0, 0, 0])
        for epoch in range(5)
        for position in range(5)
    }
    assert len(set(starts.values())) >= 20
    assert len({starts[(epoch, 0)] for epoch in range(5)}) >= 4  # epoch alone changes it
    assert len({starts[(0, position)] for position in range(5)}) >= 4  # position alone

    # Masks (not only crops) change too: crop = whole record, so only the mask varies.
    masked = PairViewsDataset(
        ramp_dataset(0).store, ViewAugmenter(crop_samples=4000, mask_spans=1), seed=9
    )
    patterns = {
        (masked[key_for(0, epoch, position)]["views"][0, 0] == 0).numpy().tobytes()
        for epoch in range(3)
        for position in range(3)
    }
    assert len(patterns) >= 8


def test_each_view_uses_the_generator_of_its_seed_epoch_position_and_view() -> None:
    """``view(record, epoch, position, v)`` equals the augmenter fed
    ``stream_rng(seed, AUGMENT_STREAM, epoch, position, v)``: pins the documented
    seeding (the same mutation as above, and any reordering of the entropy)."""
    dataset = ramp_dataset(mask_spans=2)
    signal = dataset.store.read(1)
    for epoch, position, view_index in [(0, 0, 0), (3, 7, 1), (11, 2, 0)]:
        rng = stream_rng(9, AUGMENT_STREAM, epoch, position, view_index)
        expected = dataset.augmenter(signal, 4000, rng)
        batch = dataset[key_for(1, epoch, position)]["views"]
        np.testing.assert_array_equal(batch[view_index].numpy(), expected)
