"""The cohort store: what ingest writes and everything downstream reads.

Layout of a store directory (see docs/data-contract.md)::

    header.json          schema version, rate, leads, units, slot, per-cohort provenance
    manifest.parquet     one row per stored ECG; the row number is the global index
    quarantine.parquet   one row per rejected input, with its reason
    shards/NAME.i16      raw int16 microvolts, C-order (n, 8, 4000): 64,000 bytes per ECG
    parts/NAME.parquet   the manifest rows of shard NAME (ingest's journal)
    parts/NAME.quarantine.parquet  rejections seen while writing shard NAME

A shard is committed when its part file exists: the part is written to a
temporary name after the shard data is flushed to disk and then renamed, so a
killed ingest leaves either a complete shard or an orphan that is ignored and
rewritten on resume. ``manifest.parquet`` is rebuilt from the parts.

Reads go through ``os.pread`` of exactly one record's bytes: no file mapping
to hold open per process and no read-ahead beyond the record. Against
``np.memmap`` maps opened once, it measured 1.2x as fast with a (verified)
cold page cache and 0.6x when warm (``python benchmarks/bench_store.py``;
docs/benchmarks.md); either way a random read costs well under a training
step's share.
"""

from cape.store.layout import (
    HEADER_FILE,
    INT16_LIMIT_MV,
    MANIFEST_CORE_COLUMNS,
    MANIFEST_FILE,
    N_LEADS,
    PART_DIR,
    QUARANTINE_COLUMNS,
    QUARANTINE_FILE,
    RECORD_BYTES,
    SAMPLING_RATE_HZ,
    SCHEMA_VERSION,
    SHARD_DIR,
    SLOT_SAMPLES,
    new_header,
    read_header,
    write_json_atomic,
    write_parquet_atomic,
)
from cape.store.lock import store_lock
from cape.store.reader import CohortStore
from cape.store.slot import fit_to_slot, to_int16_microvolts, would_clip_int16
from cape.store.writer import (
    ShardWriter,
    committed_shards,
    create_store_from_arrays,
    rebuild_manifest,
    write_splits,
)

__all__ = [
    "HEADER_FILE",
    "INT16_LIMIT_MV",
    "MANIFEST_CORE_COLUMNS",
    "MANIFEST_FILE",
    "N_LEADS",
    "PART_DIR",
    "QUARANTINE_COLUMNS",
    "QUARANTINE_FILE",
    "RECORD_BYTES",
    "SAMPLING_RATE_HZ",
    "SCHEMA_VERSION",
    "SHARD_DIR",
    "SLOT_SAMPLES",
    "CohortStore",
    "ShardWriter",
    "committed_shards",
    "create_store_from_arrays",
    "fit_to_slot",
    "new_header",
    "read_header",
    "rebuild_manifest",
    "store_lock",
    "to_int16_microvolts",
    "would_clip_int16",
    "write_json_atomic",
    "write_parquet_atomic",
    "write_splits",
]
