"""The Dataset over the store: views come from the right ECGs, seeded per sample."""

from __future__ import annotations

import numpy as np
import torch

from cape.augment import ViewAugmenter
from cape.pretrain.data import PairViewsDataset, make_loader
from cape.samplers import PairBatchSampler, PatientTable

from .helpers import fake_store

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
