"""The fine-tuning data path: labelled ECGs -> augmented windows, in DataLoader workers.

It is pretraining's path with one view per ECG instead of two: the sampler
runs in the main process and yields one :class:`BatchKey` per step; a worker
reads the store and builds this rank's whole batch with the pretraining
augmentation (:class:`cape.augment.ViewAugmenter`: random crop + zero
masking). Each ECG's crop and mask come from a generator seeded with
``(seed, stream, epoch, position)``, so a batch does not depend on the number
of workers, and a run resumed mid-epoch sees the batches it would have seen.

Evaluation uses the embedding rule (:class:`cape.embed.WindowDataset`): the
central window of each record's valid part, or several evenly spaced windows
whose features are averaged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from cape.augment import ViewAugmenter
from cape.errors import CapeError
from cape.pretrain.data import StoreLike
from cape.samplers import stream_rng

BATCHES_STREAM = 22
AUGMENT_STREAM = 23


@dataclass(frozen=True)
class BatchKey:
    """One step of one rank: rows into the training selection and their epoch positions."""

    epoch: int
    rows: tuple[int, ...]
    positions: tuple[int, ...]


class EpochBatches(Sampler[BatchKey]):
    """Shuffled global batches of training ECGs; each rank takes its contiguous slice.

    Every epoch is a permutation drawn from ``(seed, epoch)``, cut into
    ``steps_per_epoch`` full global batches (the remainder waits for another
    epoch's shuffle: a short last batch would give batch norm a different
    batch size).

    Args:
        n_rows: training ECGs.
        batch_size: ECGs per global batch (a multiple of ``world_size``).
        seed: run seed.
        rank: this process's rank.
        world_size: number of ranks.

    Raises:
        CapeError: fewer training ECGs than one batch, or a batch that does not
            divide among the ranks.
    """

    def __init__(
        self, n_rows: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        if batch_size % world_size:
            raise CapeError(f"batch_size {batch_size} is not a multiple of {world_size} ranks")
        if n_rows < batch_size:
            raise CapeError(
                f"{n_rows} training ECGs cannot fill one batch of {batch_size}; lower batch_size"
            )
        self.n_rows = n_rows
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.local_batch = batch_size // world_size
        self.epoch = 0
        self.start_step = 0

    @property
    def steps_per_epoch(self) -> int:
        return self.n_rows // self.batch_size

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Choose the epoch to iterate (and the step to start at, for a resume)."""
        self.epoch, self.start_step = int(epoch), int(start_step)

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start_step

    def __iter__(self) -> Iterator[BatchKey]:
        order = stream_rng(self.seed, BATCHES_STREAM, self.epoch).permutation(self.n_rows)
        for step in range(self.start_step, self.steps_per_epoch):
            first = step * self.batch_size + self.rank * self.local_batch
            positions = range(first, first + self.local_batch)
            yield BatchKey(
                epoch=self.epoch,
                rows=tuple(int(order[p]) for p in positions),
                positions=tuple(positions),
            )


class LabelledViewsDataset(Dataset[dict[str, torch.Tensor]]):
    """Maps a :class:`BatchKey` to this rank's batch of augmented windows and targets.

    Args:
        store: the cohort store (picklable; opened lazily in each worker).
        records: ``(n,)`` global store indices of the training ECGs.
        targets: ``(n, k)`` float targets aligned with ``records`` (already encoded).
        augmenter: crop + mask.
        seed: run seed.
    """

    def __init__(
        self,
        store: StoreLike,
        records: np.ndarray,
        targets: np.ndarray,
        augmenter: ViewAugmenter,
        seed: int,
    ) -> None:
        self.store = store
        self.records = np.asarray(records, dtype=np.int64)
        self.targets = np.asarray(targets, dtype=np.float32)
        self.augmenter = augmenter
        self.seed = seed
        self.valid_lengths = np.asarray(store.valid_lengths, dtype=np.int64)

    def view(self, row: int, epoch: int, position: int) -> np.ndarray:
        """The augmented window ``(leads, crop_samples)`` of training ECG ``row``."""
        record = int(self.records[row])
        rng = stream_rng(self.seed, AUGMENT_STREAM, epoch, position)
        return self.augmenter(self.store.read(record), int(self.valid_lengths[record]), rng)

    def __getitem__(self, key: BatchKey) -> dict[str, torch.Tensor]:
        """``views``: float32 ``(b, leads, crop_samples)``; ``targets``: float32 ``(b, k)``."""
        views = np.stack(
            [
                self.view(row, key.epoch, position)
                for row, position in zip(key.rows, key.positions, strict=True)
            ]
        )
        return {
            "views": torch.from_numpy(views),
            "targets": torch.from_numpy(self.targets[list(key.rows)]),
        }


def make_train_loader(
    dataset: LabelledViewsDataset,
    sampler: EpochBatches,
    num_workers: int,
    seed: int,
    pin_memory: bool = False,
) -> DataLoader:
    """One ready batch per sampler key; persistent workers, a private generator.

    The generator keeps the loader from drawing on the global RNG that dropout
    uses, so a resumed run does not diverge (as in pretraining).
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
