"""The pretraining data path: store -> pairs -> augmented views, in DataLoader workers.

The sampler (:class:`cape.samplers.PairBatchSampler`) runs in the main
process and yields one :class:`~cape.samplers.BatchKey` per step; a worker
turns the key into this rank's whole batch (one tensor per step, so the
inter-process traffic is one array rather than thousands of small ones).

Every view's random crop and mask come from a generator seeded with
``(seed, epoch, sample position, view)``: the result does not depend on the
number of workers or on which worker builds it, and a run resumed mid-epoch
sees exactly the views it would have seen.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from cape.augment import ViewAugmenter
from cape.samplers import AUGMENT_STREAM, BatchKey, PairBatchSampler, stream_rng


class StoreLike(Protocol):
    """What pretraining needs from a cohort store (``cape.store.CohortStore`` or a fake)."""

    manifest: pd.DataFrame
    valid_lengths: np.ndarray

    def __len__(self) -> int: ...

    def read(self, index: int) -> np.ndarray: ...


class PairViewsDataset(Dataset[dict[str, torch.Tensor]]):
    """Maps a :class:`BatchKey` to this rank's batch of augmented views.

    Args:
        store: the cohort store (picklable; opened lazily in each worker).
        augmenter: crop + mask.
        seed: run seed.
    """

    def __init__(self, store: StoreLike, augmenter: ViewAugmenter, seed: int) -> None:
        self.store = store
        self.augmenter = augmenter
        self.seed = seed
        self.valid_lengths = np.asarray(store.valid_lengths, dtype=np.int64)

    def view(self, record: int, epoch: int, position: int, view_index: int) -> np.ndarray:
        """One augmented view ``(leads, crop_samples)`` of ECG ``record``."""
        rng = stream_rng(self.seed, AUGMENT_STREAM, epoch, position, view_index)
        return self.augmenter(self.store.read(int(record)), int(self.valid_lengths[record]), rng)

    def __getitem__(self, key: BatchKey) -> dict[str, torch.Tensor]:
        """Build a batch.

        Returns:
            ``views``: float32 ``(2n, leads, crop_samples)``, first views of the ``n``
            patients then their second views; ``cohorts``: int64 ``(n,)``;
            ``single_cohort``: bool scalar tensor (the global batch's).
        """
        first_views = [
            self.view(record, key.epoch, position, 0)
            for record, position in zip(key.record_a, key.positions, strict=True)
        ]
        second_views = [
            self.view(record, key.epoch, position, 1)
            for record, position in zip(key.record_b, key.positions, strict=True)
        ]
        views = np.stack(first_views + second_views)
        return {
            "views": torch.from_numpy(views),
            "cohorts": torch.from_numpy(np.asarray(key.cohorts, dtype=np.int64)),
            "single_cohort": torch.tensor(key.single_cohort),
        }


def make_loader(
    dataset: PairViewsDataset,
    sampler: PairBatchSampler,
    num_workers: int,
    seed: int,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader that yields one ready batch per sampler key.

    Workers persist across epochs (the sampler runs in the main process, so
    :meth:`PairBatchSampler.set_epoch` still takes effect). The loader gets its
    own torch generator so that starting an epoch does not consume the global
    RNG that dropout uses -- otherwise a resumed run would diverge.
    """
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
    )
