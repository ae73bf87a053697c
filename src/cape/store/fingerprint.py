"""A store's fingerprint: its manifest and a cheap digest of its signals.

Used by ``cape embed`` (written next to the features, compared across feature
sets) and by the report. The manifest alone misses a store whose shards were
rewritten in place under the same ids (re-ingested with other preprocessing, a
shard replaced by one from another store), so the fingerprint also covers the
signal bytes, sampled so that a store of millions of ECGs costs a few MB of
reads:

* the manifest's per-ECG ``signal_hash`` column (BLAKE2b of each stored slot,
  written by ingest): any re-ingest that changes any ECG changes it;
* every shard's size and one 4 KB block from the middle of each shard;
* the whole slots of up to :data:`SAMPLED_RECORDS` evenly spaced ECGs (first
  and last included).

Nothing depends on file modification times or the store's path, so a store
copied to another machine keeps its fingerprint. What it cannot see: bytes
changed in place, outside the sampled ECGs and blocks, by something other than
ingest (which would rewrite ``signal_hash``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cape.store.layout import RECORD_BYTES, SHARD_DIR

SAMPLED_RECORDS = 64  # whole ECGs hashed: 64 x 64 KB = 4 MB read
SHARD_BLOCK_BYTES = 4096  # bytes hashed from the middle of every shard
MANIFEST_COLUMNS = (
    "cohort",
    "record_id",
    "patient_id",
    "shard",
    "row",
    "valid_length",
    "split",
    "signal_hash",
)


def manifest_digest(manifest: pd.DataFrame) -> bytes:
    """SHA-256 of the manifest's ids, placement, splits and per-ECG signal hashes."""
    frame = manifest[[c for c in MANIFEST_COLUMNS if c in manifest]]
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return hashlib.sha256(hashed.tobytes()).digest()


def signal_digest(
    shard_dir: Path,
    shard_names: list[str],
    shard_of: np.ndarray,
    offsets: np.ndarray,
    n_records: int = SAMPLED_RECORDS,
) -> bytes:
    """SHA-256 of shard sizes, one block per shard and ``n_records`` sampled ECGs.

    Args:
        shard_dir: the store's ``shards`` directory.
        shard_names: shard file stems, sorted (``shard_of`` indexes them).
        shard_of: ``(n_ecgs,)`` shard index of every ECG.
        offsets: ``(n_ecgs,)`` byte offset of every ECG in its shard.
        n_records: ECGs whose whole slot is hashed.

    A missing shard is hashed as size -1 (the reader reports it when it is read).
    """
    hasher = hashlib.sha256()
    fds: dict[int, int] = {}

    def read(shard: int, length: int, offset: int) -> bytes:
        if shard not in fds:
            fds[shard] = os.open(shard_dir / f"{shard_names[shard]}.i16", os.O_RDONLY)
        return os.pread(fds[shard], length, offset)

    try:
        for shard, name in enumerate(shard_names):
            path = shard_dir / f"{name}.i16"
            size = path.stat().st_size if path.is_file() else -1
            hasher.update(f"{name}:{size};".encode())
            if size > 0:
                middle = (size // 2) // RECORD_BYTES * RECORD_BYTES
                hasher.update(read(shard, min(SHARD_BLOCK_BYTES, size - middle), middle))
        n = len(offsets)
        if n:
            picks = np.unique(np.linspace(0, n - 1, num=min(n, n_records)).round().astype(np.int64))
            for index in picks:
                shard = int(shard_of[index])
                if (shard_dir / f"{shard_names[shard]}.i16").is_file():
                    hasher.update(read(shard, RECORD_BYTES, int(offsets[index])))
    finally:
        for fd in fds.values():
            os.close(fd)
    return hasher.digest()


def store_fingerprint(
    path: Path,
    manifest: pd.DataFrame,
    shard_names: list[str],
    shard_of: np.ndarray,
    offsets: np.ndarray,
) -> str:
    """16 hex characters over :func:`manifest_digest` and :func:`signal_digest`."""
    hasher = hashlib.sha256(manifest_digest(manifest))
    hasher.update(signal_digest(Path(path) / SHARD_DIR, shard_names, shard_of, offsets))
    return hasher.hexdigest()[:16]
