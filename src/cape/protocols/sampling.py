"""Seeded sampling of a protocol run's train/val/test ECGs inside the store's patient-level splits.

Splits are assigned to patients once (``cape split``) and written into the
manifest; pretraining leaves each cohort's test patients out. A protocol run
therefore never re-splits: it draws its training ECGs from a cohort's
``train`` patients, its validation ECGs (early stopping) from ``val`` and its
test ECGs from ``test``, so no patient is in two of them and test patients
were never seen in pretraining. Within a split, ECGs are drawn uniformly
without replacement.

Requested sizes larger than what a split holds are capped to what it holds,
with a warning that gives both counts (or a :class:`CapeError` with
``strict=True``); a split with fewer than :data:`MIN_PER_SPLIT` labelled ECGs
is always an error.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cape.errors import CapeError

logger = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")
MIN_PER_SPLIT = 5


def derive_seed(*parts: int | str) -> int:
    """A 32-bit seed from a base seed and names, stable across processes and Python versions.

    Python's ``hash`` of a string changes per process, so names enter through
    CRC-32 instead; :class:`numpy.random.SeedSequence` mixes the parts.
    """
    entropy = [p if isinstance(p, int) else zlib.crc32(str(p).encode()) for p in parts]
    if any(e < 0 for e in entropy):
        raise ValueError(f"seed parts must be non-negative, got {parts}")
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def split_pools(index: pd.DataFrame, cohort: str, labelled: np.ndarray) -> dict[str, np.ndarray]:
    """Row positions of a cohort's labelled ECGs in each split.

    Args:
        index: features index with ``cohort`` and ``split``.
        cohort: the cohort.
        labelled: ``(len(index),)`` bool, rows with a usable label.

    Returns:
        ``{"train": positions, "val": ..., "test": ...}``, sorted int64 arrays.

    Raises:
        CapeError: the cohort has no split assigned at all.
    """
    in_cohort = (index["cohort"].astype(str) == cohort).to_numpy()
    splits = index["split"].astype(object).where(index["split"].notna(), None).to_numpy()
    if in_cohort.any() and all(s is None for s in splits[in_cohort]):
        raise CapeError(
            f"cohort {cohort!r} has no train/val/test split in the features index; "
            "run `cape split STORE` and embed again"
        )
    mask = in_cohort & labelled
    return {name: np.flatnonzero(mask & (splits == name)) for name in SPLIT_NAMES}


@dataclass(frozen=True)
class SizePlan:
    """The sizes a protocol draws from one cohort's splits.

    Attributes:
        sizes: ECGs drawn per split (``train``, ``val``, ``test``).
        available: labelled ECGs per split.
        requested: the requested sizes (None: all).
        messages: one line per capped split.
    """

    sizes: dict[str, int]
    available: dict[str, int]
    requested: dict[str, int | None]
    messages: tuple[str, ...]


def plan_sizes(
    pools: dict[str, np.ndarray],
    requested: Sequence[int | None],
    what: str,
    strict: bool = False,
    splits: Sequence[str] = SPLIT_NAMES,
    expected: bool = False,
) -> SizePlan:
    """Decide how many ECGs to draw from each split, capping at what is available.

    Args:
        pools: positions per split, from :func:`split_pools`.
        requested: one size per name in ``splits`` (None: the whole split).
        what: description for messages, e.g. ``"cohort 'A', task 'age'"``.
        strict: raise instead of capping.
        splits: the splits to plan.
        expected: capping is routine here (sizes derived by the protocol, not asked
            for by the user): log it at INFO, not WARNING. ``messages`` holds it either way.

    Raises:
        CapeError: a split holds fewer than :data:`MIN_PER_SPLIT` labelled ECGs,
            or (``strict``) fewer than requested; the message gives the counts.
    """
    if len(requested) != len(splits):
        raise ValueError(f"need {len(splits)} sizes, got {list(requested)}")
    available = {name: int(pools[name].size) for name in splits}
    sizes: dict[str, int] = {}
    messages = []
    for name, want in zip(splits, requested, strict=True):
        have = available[name]
        if have < MIN_PER_SPLIT:
            counts = ", ".join(f"{k} {v}" for k, v in available.items())
            raise CapeError(
                f"too few labelled ECGs for {what}: split {name!r} holds {have} "
                f"(need at least {MIN_PER_SPLIT}; labelled ECGs per split: {counts})"
            )
        if want is not None and want < 1:
            raise CapeError(f"split sizes must be >= 1, got {want} for {name!r}")
        if want is not None and want > have:
            if strict:
                raise CapeError(
                    f"too few labelled ECGs for {what}: split {name!r} holds {have:,}, "
                    f"{want:,} requested (lower the sizes, or allow capping)"
                )
            messages.append(
                f"{what}: split {name!r} holds {have:,} labelled ECGs, "
                f"{want:,} requested; using {have:,}"
            )
        sizes[name] = have if want is None else min(want, have)
    for message in messages:
        logger.log(logging.INFO if expected else logging.WARNING, message)
    return SizePlan(
        sizes=sizes,
        available=available,
        requested=dict(zip(splits, requested, strict=True)),
        messages=tuple(messages),
    )


def draw(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` positions drawn without replacement from ``pool`` (sorted), seeded.

    Raises:
        ValueError: ``n`` exceeds the pool.
    """
    if n > pool.size:
        raise ValueError(f"cannot draw {n} from a pool of {pool.size}")
    rng = np.random.default_rng(seed)
    if n == pool.size:
        return np.sort(pool)
    return np.sort(rng.choice(pool, size=n, replace=False))


def draw_splits(pools: dict[str, np.ndarray], plan: SizePlan, seed: int) -> dict[str, np.ndarray]:
    """One run's sample: ``plan.sizes[split]`` positions from each split, each split its own stream."""
    return {name: draw(pools[name], n, derive_seed(seed, name)) for name, n in plan.sizes.items()}
