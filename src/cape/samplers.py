"""Patient pairs and batch plans for patient-contrastive pretraining.

One *sample* is a patient: two different ECGs of theirs form the positive
pair. Every epoch draws one random pair ``(i != j)`` for every eligible
patient (at least two ECGs, none in an excluded split) and groups patients
into global batches of ``B`` patients (``2B`` ECGs):

* ``random`` (the paper's CAPE-X): patients of all cohorts shuffled together.
* ``idb`` (CAPE-Z, in-distribution batching): each batch holds patients of
  one cohort only. Each cohort is shuffled and cut into full batches; the
  batches of all cohorts are then interleaved in random order, so a cohort
  appears in proportion to its number of patients (``floor(P_c / B)``
  batches per epoch). A cohort with fewer than ``B`` eligible patients cannot
  fill a batch: by default that is an error; ``small_cohorts="drop"`` leaves
  it out (and says so).
* ``idb-mask``: the batches of ``random``; the loss restricts each view's
  negatives to its own cohort. This project's variant, not the paper's
  Equation 3 (that is the loss of a one-cohort batch, i.e. ``idb``).

Incomplete last batches are dropped (a different batch size would change the
loss's difficulty); as the shuffle changes every epoch, every patient is
still used. All draws are deterministic functions of ``(seed, epoch)``.

Distributed: every rank builds the same global plan and takes its contiguous
slice of each global batch, so under ``idb`` all ranks draw from the same
cohort at the same step, and the gathered batch equals the global one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from cape.errors import CapeError

logger = logging.getLogger(__name__)

Batching = Literal["random", "idb", "idb-mask"]
BATCHINGS: tuple[str, ...] = ("random", "idb", "idb-mask")

ExcludeSplits = Sequence[str] | Mapping[str, Sequence[str]]


def excluded_splits(exclude_splits: ExcludeSplits | None, cohort: str) -> list[str]:
    """The splits of ``cohort`` left out of pretraining.

    ``exclude_splits`` is a list (every cohort loses those splits) or a mapping
    cohort -> list (only the cohorts named lose theirs; the paper leaves out
    only the test patients of the cohort its heads are trained on).
    """
    if not exclude_splits:
        return []
    if isinstance(exclude_splits, Mapping):
        return [str(s) for s in exclude_splits.get(cohort, ())]
    return [str(s) for s in exclude_splits]


# Independent random streams: SeedSequence([seed, STREAM, epoch, ...]).
PAIRS_STREAM = 1
BATCHES_STREAM = 2
AUGMENT_STREAM = 3


def stream_rng(*entropy: int) -> np.random.Generator:
    """A generator determined by a tuple of non-negative integers."""
    return np.random.default_rng(np.random.SeedSequence([int(e) for e in entropy]))


@dataclass(frozen=True)
class PatientTable:
    """Eligible patients and their ECGs (global store indices), grouped by patient.

    Patients are ordered by (cohort, patient id); a patient is identified by
    ``(cohort, patient_id)`` since ids are only unique within a cohort.

    Attributes:
        cohort_names: sorted names of the selected cohorts.
        patient_cohort: ``(P,)`` index into ``cohort_names`` per patient.
        offsets: ``(P + 1,)`` patient ``p``'s ECGs are ``records[offsets[p]:offsets[p+1]]``.
        records: ``(R,)`` global store indices, ascending within a patient.
    """

    cohort_names: tuple[str, ...]
    patient_cohort: np.ndarray
    offsets: np.ndarray
    records: np.ndarray

    @property
    def n_patients(self) -> int:
        return len(self.patient_cohort)

    def patients_per_cohort(self) -> dict[str, int]:
        """Number of eligible patients of each selected cohort."""
        counts = np.bincount(self.patient_cohort, minlength=len(self.cohort_names))
        return {name: int(c) for name, c in zip(self.cohort_names, counts, strict=True)}

    def fingerprint(self) -> str:
        """Short hash of the selection (changes when the eligible ECGs do)."""
        digest = hashlib.sha256()
        digest.update("\x1f".join(self.cohort_names).encode())
        for array in (self.patient_cohort, self.offsets, self.records):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]

    @classmethod
    def from_manifest(
        cls,
        manifest: pd.DataFrame,
        cohorts: Sequence[str] | None = None,
        exclude_splits: ExcludeSplits = ("test",),
    ) -> PatientTable:
        """Select the patients with at least two ECGs outside the excluded splits.

        Args:
            manifest: store manifest (RangeIndex = global index) with ``cohort``,
                ``patient_id`` and optionally ``split``. Rows with a missing or empty
                patient id cannot be paired and are skipped.
            cohorts: cohorts to use (``None``: all in the manifest).
            exclude_splits: ECGs whose ``split`` is one of these are left out: a list
                for every cohort, or a mapping cohort -> list for the cohorts named
                (see :func:`excluded_splits`).

        Raises:
            CapeError: an unknown cohort (also as a key of ``exclude_splits``), ECGs
                without a split in a cohort that excludes splits, or no patient
                with two ECGs.
        """
        available = sorted(manifest["cohort"].astype(str).unique().tolist())
        chosen = available if cohorts is None else sorted(set(cohorts))
        unknown = [c for c in chosen if c not in available]
        if unknown:
            raise CapeError(f"cohorts {unknown} are not in the store; it holds {available}")
        cohort = manifest["cohort"].astype(str).to_numpy()
        patient = manifest["patient_id"]
        usable = np.isin(cohort, chosen) & patient.notna().to_numpy()
        patient_str = patient.astype(str).to_numpy()
        usable &= patient_str != ""
        if isinstance(exclude_splits, Mapping):
            unknown = sorted(set(exclude_splits) - set(available))
            if unknown:
                raise CapeError(
                    f"exclude_splits names cohorts {unknown} that are not in the store; it "
                    f"holds {available}"
                )
        shown = (
            dict(exclude_splits) if isinstance(exclude_splits, Mapping) else list(exclude_splits)
        )
        per_cohort = {c: excluded_splits(exclude_splits, c) for c in chosen}
        if any(per_cohort.values()):
            # Leaving out e.g. test patients means nothing if some ECGs have no split yet:
            # a later `cape split` could put patients already seen here in the test split.
            split = (
                manifest["split"] if "split" in manifest else pd.Series(None, index=manifest.index)
            )
            excluding = np.isin(cohort, [c for c, splits in per_cohort.items() if splits])
            unsplit = usable & excluding & split.isna().to_numpy()
            if unsplit.any():
                raise CapeError(
                    f"{int(unsplit.sum())} ECGs of the chosen cohorts have no split, so "
                    f"exclude_splits={shown} cannot be honoured; run `cape split` "
                    "on the store first (or set exclude_splits=[] to pretrain on everything)"
                )
            for name, splits in per_cohort.items():
                if splits:
                    usable &= ~((cohort == name) & split.isin(splits).to_numpy())
        frame = pd.DataFrame(
            {
                "cohort": cohort[usable],
                "patient": patient_str[usable],
                "index": np.flatnonzero(usable),
            }
        ).sort_values(["cohort", "patient", "index"], kind="stable")
        new_group = (frame["cohort"] != frame["cohort"].shift()) | (
            frame["patient"] != frame["patient"].shift()
        )
        group = np.cumsum(new_group.to_numpy()) - 1
        counts = np.bincount(group) if len(group) else np.zeros(0, dtype=np.int64)
        keep = counts[group] >= 2 if len(group) else np.zeros(0, dtype=bool)
        kept = frame[keep]
        if kept.empty:
            raise CapeError(
                f"no patient with at least two ECGs in cohorts {chosen} "
                f"(excluding splits {shown}); patient-contrastive "
                "pretraining needs repeat ECGs"
            )
        starts = np.flatnonzero(new_group.to_numpy()[keep])
        offsets = np.append(starts, len(kept)).astype(np.int64)
        lookup = {name: k for k, name in enumerate(chosen)}
        patient_cohort = np.array(
            [lookup[c] for c in kept["cohort"].to_numpy()[starts]], dtype=np.int64
        )
        return cls(tuple(chosen), patient_cohort, offsets, kept["index"].to_numpy(np.int64))


def draw_pairs(table: PatientTable, seed: int, epoch: int) -> np.ndarray:
    """One random pair of distinct ECGs per patient.

    Returns:
        ``(P, 2)`` int64 global store indices; row ``p`` is patient ``p``'s pair.
    """
    rng = stream_rng(seed, PAIRS_STREAM, epoch)
    counts = np.diff(table.offsets)
    first = rng.integers(0, counts)
    second = rng.integers(0, counts - 1)
    second += second >= first  # skip the first pick: uniform over the other ECGs
    base = table.offsets[:-1]
    return np.stack([table.records[base + first], table.records[base + second]], axis=1)


def cohorts_too_small(table: PatientTable, batch_patients: int) -> list[str]:
    """Cohorts with fewer eligible patients than one batch."""
    return [name for name, n in table.patients_per_cohort().items() if n < batch_patients]


def plan_epoch(
    table: PatientTable,
    batch_patients: int,
    batching: Batching,
    seed: int,
    epoch: int,
    skip_cohorts: Sequence[str] = (),
) -> np.ndarray:
    """The global batches of one epoch.

    Args:
        table: eligible patients.
        batch_patients: patients per global batch.
        batching: ``"random"``, ``"idb"`` or ``"idb-mask"``.
        seed: run seed.
        epoch: epoch number.
        skip_cohorts: cohorts left out (``idb`` only; see ``small_cohorts``).

    Returns:
        ``(steps, batch_patients)`` int64 patient indices.

    Raises:
        ValueError: unknown batching.
    """
    rng = stream_rng(seed, BATCHES_STREAM, epoch)
    if batching in ("random", "idb-mask"):
        order = rng.permutation(table.n_patients)
        steps = table.n_patients // batch_patients
        return order[: steps * batch_patients].reshape(steps, batch_patients)
    if batching != "idb":
        raise ValueError(f"batching must be one of {BATCHINGS}, got {batching!r}")
    batches = []
    for code, name in enumerate(table.cohort_names):
        members = np.flatnonzero(table.patient_cohort == code)
        shuffled = rng.permutation(members)  # drawn for every cohort: keeps streams aligned
        if name in skip_cohorts:
            continue
        steps = len(shuffled) // batch_patients
        batches.append(shuffled[: steps * batch_patients].reshape(steps, batch_patients))
    stacked = np.concatenate(batches) if batches else np.zeros((0, batch_patients), np.int64)
    return stacked[rng.permutation(len(stacked))]


@dataclass(frozen=True)
class BatchKey:
    """What one rank needs to build its slice of one global batch.

    Attributes:
        epoch: epoch number.
        step: step within the epoch.
        positions: ``(n,)`` sample positions within the epoch
            (``step * B + rank * n + k``); they seed the augmentations.
        record_a: ``(n,)`` global store index of each patient's first ECG.
        record_b: ``(n,)`` second ECG.
        cohorts: ``(n,)`` cohort codes (index into ``PatientTable.cohort_names``).
        single_cohort: whether the whole global batch comes from one cohort.
    """

    epoch: int
    step: int
    positions: np.ndarray
    record_a: np.ndarray
    record_b: np.ndarray
    cohorts: np.ndarray
    single_cohort: bool


class PairBatchSampler:
    """Yields one :class:`BatchKey` per step: this rank's slice of each global batch.

    Use as the ``sampler`` of a ``DataLoader`` with ``batch_size=None``. Call
    :meth:`set_epoch` before each epoch (``start_step`` resumes mid-epoch).

    Args:
        table: eligible patients.
        batch_patients: patients per *global* batch (divisible by ``world_size``).
        batching: ``"random"``, ``"idb"`` or ``"idb-mask"``.
        seed: run seed.
        rank: this process's rank.
        world_size: number of processes.
        small_cohorts: under ``idb``, what to do with a cohort smaller than one
            batch: ``"error"`` or ``"drop"`` it.

    Raises:
        CapeError: the batch is larger than the eligible patients (or than
            every cohort under ``idb``), or a cohort is too small under
            ``small_cohorts="error"``.
        ValueError: bad batching, rank or world size.
    """

    def __init__(
        self,
        table: PatientTable,
        batch_patients: int,
        batching: Batching = "random",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        small_cohorts: Literal["error", "drop"] = "error",
    ) -> None:
        if batching not in BATCHINGS:
            raise ValueError(f"batching must be one of {BATCHINGS}, got {batching!r}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        if batch_patients < 1 or batch_patients % world_size:
            raise CapeError(
                f"batch_patients={batch_patients} must be a positive multiple of the "
                f"number of processes ({world_size})"
            )
        if batch_patients > table.n_patients:
            raise CapeError(
                f"batch_patients={batch_patients} is larger than the {table.n_patients} "
                f"eligible patients (per cohort: {table.patients_per_cohort()})"
            )
        self.skip_cohorts: tuple[str, ...] = ()
        if batching == "idb":
            small = cohorts_too_small(table, batch_patients)
            if small and small_cohorts == "error":
                raise CapeError(
                    f"batching=idb needs every cohort to fill a batch of {batch_patients} "
                    f"patients, but cohorts {small} have fewer "
                    f"({table.patients_per_cohort()}); lower batch_patients, leave them out "
                    "with `cohorts`, or set small_cohorts=drop"
                )
            if small:
                logger.warning("idb: leaving out cohorts smaller than one batch: %s", small)
            if len(small) == len(table.cohort_names):
                raise CapeError(f"batching=idb: no cohort has {batch_patients} eligible patients")
            self.skip_cohorts = tuple(small)
        self.table = table
        self.batch_patients = batch_patients
        self.batching: Batching = batching
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.local_patients = batch_patients // world_size
        self.epoch = 0
        self.start_step = 0
        self.steps_per_epoch = len(self.plan(0))

    def plan(self, epoch: int) -> np.ndarray:
        """The global batches of ``epoch``: ``(steps, batch_patients)`` patient indices."""
        return plan_epoch(
            self.table, self.batch_patients, self.batching, self.seed, epoch, self.skip_cohorts
        )

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch to iterate, starting at ``start_step`` (a resume)."""
        if not 0 <= start_step <= self.steps_per_epoch:
            raise ValueError(f"start_step {start_step} outside 0..{self.steps_per_epoch}")
        self.epoch = epoch
        self.start_step = start_step

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start_step

    def __iter__(self) -> Iterator[BatchKey]:
        plan = self.plan(self.epoch)
        pairs = draw_pairs(self.table, self.seed, self.epoch)
        n = self.local_patients
        first = self.rank * n
        for step in range(self.start_step, len(plan)):
            batch_cohorts = self.table.patient_cohort[plan[step]]
            mine = plan[step, first : first + n]
            yield BatchKey(
                epoch=self.epoch,
                step=step,
                positions=step * self.batch_patients + first + np.arange(n, dtype=np.int64),
                record_a=pairs[mine, 0],
                record_b=pairs[mine, 1],
                cohorts=self.table.patient_cohort[mine],
                single_cohort=bool((batch_cohorts == batch_cohorts[0]).all()),
            )
