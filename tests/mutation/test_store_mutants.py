"""Tests that kill mutmut's surviving mutants of cape.store (docs/testing.md).

Mutant names are mutmut 3.8.1's (``scripts/mutation.sh store``); each docstring names the
mutants the test kills and the bug they stand for. Only this file and tests/test_store.py are
in the module's selection, so the slot conversion (also covered by the ingest tests) is tested
here directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cape.errors import CapeError
from cape.leads import STORE_LEADS
from cape.store import (
    MANIFEST_CORE_COLUMNS,
    QUARANTINE_COLUMNS,
    RECORD_BYTES,
    CohortStore,
    ShardWriter,
    committed_shards,
    create_store_from_arrays,
    fit_to_slot,
    new_header,
    read_header,
    rebuild_manifest,
    to_int16_microvolts,
    would_clip_int16,
    write_json_atomic,
    write_parquet_atomic,
    write_splits,
)
from cape.store import fingerprint as fingerprint_module
from cape.store.fingerprint import manifest_digest, signal_digest


def _arrays(n: int = 4, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    signals = rng.normal(scale=0.5, size=(n, 8, 4000)).astype(np.float32)
    manifest = pd.DataFrame(
        {
            "record_id": [f"r{k}" for k in range(n)],
            "patient_id": [f"p{k // 2}" for k in range(n)],
            "cohort": "a",
            "valid_length": 4000,
        }
    )
    return signals, manifest


class _RecordingLock:
    """Stands in for the store's ``threading.Lock``: counts acquisitions, can run a hook."""

    def __init__(self) -> None:
        self.entered = 0
        self.on_enter: Callable[[], None] | None = None

    def __enter__(self) -> None:
        self.entered += 1
        if self.on_enter is not None:
            self.on_enter()

    def __exit__(self, *exc: object) -> None:
        return None


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


# -- slot: fit_to_slot ------------------------------------------------------------------------


def test_fit_to_slot_default_slot_is_ten_seconds() -> None:
    """Kills x_fit_to_slot__mutmut_1 (default slot 4001 samples: every stored record one
    sample too long for the store's 4000-sample slot)."""
    out, kept = fit_to_slot(np.ones((1, 2, 4500)), [4500])
    assert out.shape == (1, 2, 4000)
    assert kept.tolist() == [4000]


def test_fit_to_slot_crops_the_centre_and_pads_the_end() -> None:
    """Kills x_fit_to_slot__mutmut_2..60 that change the result (array/lengths dropped, the
    batch or lead axis read from the wrong dimension, float32 lost, start ``/ 2`` or ``// 3``
    or ``lengths + slot``, ``start - length``, lengths not cast to int64 or not flattened):
    the central crop of a long record, the zero-padded copy of a short one, and the kept
    lengths are exact by construction."""
    batch, leads, n, slot = 3, 2, 10, 4
    signals = np.arange(batch * leads * n, dtype=np.float64).reshape(batch, leads, n)
    lengths = np.array([[10], [9], [3]], dtype=np.int32)  # (batch, 1): flattened
    out, kept = fit_to_slot(signals, lengths, slot_samples=slot)
    assert out.dtype == np.float32
    assert out.shape == (batch, leads, slot)
    assert kept.dtype == np.int64
    assert kept.tolist() == [4, 4, 3]
    np.testing.assert_array_equal(out[0], signals[0, :, 3:7])  # (10 - 4) // 2 = 3
    np.testing.assert_array_equal(out[1], signals[1, :, 2:6])  # (9 - 4) // 2 = 2
    np.testing.assert_array_equal(out[2, :, :3], signals[2, :, :3])
    np.testing.assert_array_equal(out[2, :, 3:], 0.0)


def test_fit_to_slot_accepts_boundary_lengths() -> None:
    """Kills x_fit_to_slot__mutmut_22/23 (``< 0`` -> ``<= 0`` / ``< 1``: an empty record refused)
    and x_fit_to_slot__mutmut_24/25 (``>`` -> ``>=``, ``shape[-1]`` -> ``shape[+1]``: a record
    filling its whole array refused)."""
    signals = np.ones((2, 3, 6))
    out, kept = fit_to_slot(signals, [0, 6], slot_samples=5)
    assert kept.tolist() == [0, 5]
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_array_equal(out[1], 1.0)


def test_fit_to_slot_errors_name_the_bad_values() -> None:
    """Kills x_fit_to_slot__mutmut_4/5/6 (the dimension check inverted or its message dropped),
    x_fit_to_slot__mutmut_15..20 (batch check on the wrong axis, inverted, message wrong) and
    x_fit_to_slot__mutmut_21/26..29 (``or`` -> ``and``, the length bound from the lead axis,
    messages wrong)."""
    with pytest.raises(
        ValueError, match=r"^signals_400hz must be \(batch, leads, samples\), got shape \(2, 5\)$"
    ):
        fit_to_slot(np.ones((2, 5)), [5, 5])
    with pytest.raises(ValueError, match=r"^3 valid lengths for a batch of 2$"):
        fit_to_slot(np.ones((2, 3, 5)), [1, 2, 3])
    with pytest.raises(ValueError, match=r"^valid_lengths must lie in \[0, 5\]$"):
        fit_to_slot(np.ones((2, 3, 5)), [-1, 2])
    with pytest.raises(ValueError, match=r"^valid_lengths must lie in \[0, 5\]$"):
        fit_to_slot(np.ones((2, 3, 5)), [6, 2])


# -- slot: int16 conversion -------------------------------------------------------------------


def test_would_clip_is_one_flag_per_record_at_the_rounded_limit() -> None:
    """Kills x_would_clip_int16__mutmut_1..5 (``/ 1000``, ``* 1001``) and x__clips__mutmut_1..25
    that change the flags: one flag per record for a batch (``(batch,)``) and one for a single
    2-D record (``(1,)``); 32.767 mV (32,767 µV) and 32.7674 mV (rounds to it) are in range,
    32.768 mV is not."""
    batch = np.zeros((2, 3, 4))
    batch[1, 2, 3] = 32.768
    flags = would_clip_int16(batch)
    assert flags.shape == (2,)
    assert flags.tolist() == [False, True]
    edge = np.zeros((2, 3, 4))
    edge[0, 0, 0] = 32.767
    edge[1, 1, 1] = -32.7674
    assert would_clip_int16(edge).tolist() == [False, False]
    record = np.zeros((3, 4))
    assert would_clip_int16(record).shape == (1,)
    assert would_clip_int16(record).tolist() == [False]
    record[2, 1] = -32.768
    assert would_clip_int16(record).tolist() == [True]


def test_to_int16_rounds_saturates_and_flags() -> None:
    """Kills x_to_int16_microvolts__mutmut_1..21 that change the result: mV -> µV rounded to
    nearest (``/ 1000`` or ``* 1001`` wrong), int16 dtype kept, saturation at both +-32,767 µV
    (a bound dropped or its sign flipped wraps or clips everything), the flag per record."""
    signals = np.array(
        [[[0.0, 0.0014, -0.0016, 1.0], [40.0, -40.0, 32.767, -32.767]], np.zeros((2, 4))]
    )
    values, clip = to_int16_microvolts(signals)
    assert values.dtype == np.int16
    assert values.shape == (2, 2, 4)
    assert values[0].tolist() == [[0, 1, -2, 1000], [32767, -32767, 32767, -32767]]
    assert values[1].tolist() == [[0] * 4, [0] * 4]
    assert clip.tolist() == [True, False]
    single, single_clip = to_int16_microvolts(np.full((2, 3), 0.5))
    assert single.tolist() == [[500] * 3] * 2
    assert single_clip.tolist() == [False]


def test_to_int16_refuses_non_finite_samples() -> None:
    """Kills x_to_int16_microvolts__mutmut_3..7 (check inverted, message dropped or altered)."""
    with pytest.raises(
        ValueError, match=r"^cannot convert non-finite samples to int16 microvolts$"
    ):
        to_int16_microvolts(np.array([[0.0, np.nan]]))


# -- layout -----------------------------------------------------------------------------------


def test_new_header_is_the_documented_contract() -> None:
    """Kills x_new_header__mutmut_3..19 (a key or value of the header renamed: readers of
    header.json look these up by name)."""
    assert new_header() == {
        "schema_version": 1,
        "format": "cape-cohort-store",
        "sampling_rate_hz": 400,
        "leads": list(STORE_LEADS),
        "units": "int16 microvolts",
        "slot_samples": 4000,
        "record_bytes": 64_000,
        "cohorts": {},
    }


def test_read_header_errors_name_the_problem(tmp_path: Path) -> None:
    """Kills x_read_header__mutmut_7 (corrupt-header message dropped) and
    x_read_header__mutmut_12..15 (the version message dropped or quoting a wrong key)."""
    (tmp_path / "header.json").write_text("{not json")
    with pytest.raises(CapeError, match=r"header\.json: corrupt store header \(Expecting"):
        read_header(tmp_path)
    (tmp_path / "header.json").write_text(json.dumps({"schema_version": 7}))
    with pytest.raises(
        CapeError,
        match=r"header\.json: store schema version 7 is not supported \(this CAPE reads version 1\)$",
    ):
        read_header(tmp_path)


def test_write_json_atomic_writes_sorted_indented_json(tmp_path: Path) -> None:
    """Kills x_write_json_atomic__mutmut_6..14 (indent, key order or the ``str`` fallback
    changed: headers diff badly, or a Path in the payload fails to serialise)."""
    target = tmp_path / "h.json"
    write_json_atomic(target, {"b": Path("x/y"), "a": 1})
    assert target.read_text() == '{\n  "a": 1,\n  "b": "x/y"\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["h.json"]


def test_write_parquet_atomic_drops_the_index(tmp_path: Path) -> None:
    """Kills x_write_parquet_atomic__mutmut_5/7/8 (``index=False`` dropped: a filtered frame's
    index would come back as a column or as the row labels)."""
    frame = pd.DataFrame({"a": [1, 2]}, index=[5, 7])
    write_parquet_atomic(frame, tmp_path / "f.parquet")
    back = pd.read_parquet(tmp_path / "f.parquet")
    assert list(back.columns) == ["a"]
    assert back.index.tolist() == [0, 1]


# -- fingerprint ------------------------------------------------------------------------------


def test_manifest_digest_covers_the_index() -> None:
    """Kills x_manifest_digest__mutmut_5/7/8 (the index, i.e. each ECG's global number, left out
    of the hash: the same rows renumbered would keep the digest)."""
    frame = pd.DataFrame({"record_id": ["a", "b"], "row": [0, 1]})
    renumbered = frame.set_axis([1, 2])
    assert manifest_digest(frame) != manifest_digest(renumbered)
    assert manifest_digest(frame) == manifest_digest(frame.copy())


def test_signal_digest_of_missing_and_tiny_shards_is_exact(tmp_path: Path) -> None:
    """Kills x_signal_digest__mutmut_21 (a missing shard stat-ed: FileNotFoundError),
    x_signal_digest__mutmut_22/23 (missing shard hashed as size +1 / -2) and
    x_signal_digest__mutmut_26 (``size > 1``: a 1-byte shard's content skipped)."""
    (tmp_path / "tiny.i16").write_bytes(b"\x07")
    empty = np.zeros(0, dtype=np.int64)
    assert signal_digest(tmp_path, ["gone"], empty, empty) == hashlib.sha256(b"gone:-1;").digest()
    assert (
        signal_digest(tmp_path, ["tiny"], empty, empty) == hashlib.sha256(b"tiny:1;\x07").digest()
    )


def test_signal_digest_hashes_the_middle_block_of_a_shard(tmp_path: Path) -> None:
    """Kills x_signal_digest__mutmut_31 (``size // 3``: the block taken from the wrong record).
    A 4-record shard's middle block is record 2's first 4 KB."""
    data = np.random.default_rng(0).integers(0, 256, size=4 * RECORD_BYTES, dtype=np.uint8)
    (tmp_path / "s.i16").write_bytes(data.tobytes())
    empty = np.zeros(0, dtype=np.int64)
    middle = 2 * RECORD_BYTES
    expected = hashlib.sha256(
        f"s:{4 * RECORD_BYTES};".encode() + data[middle : middle + 4096].tobytes()
    ).digest()
    assert signal_digest(tmp_path, ["s"], empty, empty) == expected


def test_signal_digest_samples_evenly_spaced_records_first_and_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills x_signal_digest__mutmut_53 (``num`` dropped: 50 records sampled, not 64) and
    x_signal_digest__mutmut_56 (``n - 2``: the last ECG never sampled)."""
    (tmp_path / "s.i16").write_bytes(b"\x00" * 16)
    reads: list[tuple[int, int]] = []
    real_pread = os.pread

    def pread(fd: int, length: int, offset: int) -> bytes:
        reads.append((length, offset))
        return real_pread(fd, length, offset)

    monkeypatch.setattr(fingerprint_module.os, "pread", pread)
    n = 200
    offsets = np.arange(n, dtype=np.int64) * RECORD_BYTES
    signal_digest(tmp_path, ["s"], np.zeros(n, dtype=np.int32), offsets)
    records = [offset // RECORD_BYTES for length, offset in reads if length == RECORD_BYTES]
    assert len(records) == 64
    assert records[0] == 0 and records[-1] == n - 1
    assert set(np.diff(records).tolist()) <= {3, 4}


def test_fingerprint_is_sixteen_hex_characters_and_sees_a_missing_shard(tmp_path: Path) -> None:
    """Kills x_store_fingerprint__mutmut_15 (17 characters) and, through the store,
    x_signal_digest__mutmut_21 (a deleted shard crashing the fingerprint instead of changing it)."""
    signals, manifest = _arrays(4)
    store = create_store_from_arrays(tmp_path / "s", signals, manifest, shard_size=2)
    before = store.fingerprint()
    assert len(before) == 16
    int(before, 16)
    (tmp_path / "s" / "shards" / "arrays-00001.i16").unlink()
    assert store.fingerprint() != before


# -- reader -----------------------------------------------------------------------------------


def test_open_keeps_header_and_dtypes(tmp_path: Path) -> None:
    """Kills xǁCohortStoreǁ__init____mutmut_3 / xǁCohortStoreǁopen__mutmut_14 (header dropped),
    xǁCohortStoreǁ__init____mutmut_6 (valid lengths not int32) and
    xǁCohortStoreǁ__init____mutmut_20/22 (the per-ECG shard index int64: twice the memory
    for millions of ECGs in every worker)."""
    signals, manifest = _arrays(3)
    create_store_from_arrays(tmp_path / "s", signals, manifest)
    store = CohortStore.open(tmp_path / "s")
    assert store.header["format"] == "cape-cohort-store"
    assert store.sampling_rate_hz == 400
    assert store.lead_names == list(STORE_LEADS)
    assert store.valid_lengths.dtype == np.int32
    assert store._shard_index.dtype == np.int32


def test_offsets_do_not_overflow_for_int32_rows(tmp_path: Path) -> None:
    """Kills xǁCohortStoreǁ__init____mutmut_25 (row numbers kept in the manifest's dtype: an
    int32 ``row`` of 40,000 times 64,000 bytes overflows and reads the wrong ECG)."""
    manifest = pd.DataFrame(
        {"valid_length": [4000], "shard": ["s"], "row": np.array([40_000], dtype=np.int32)}
    )
    store = CohortStore(tmp_path, new_header(), manifest)
    assert int(store._offsets[0]) == 40_000 * RECORD_BYTES


def test_open_without_manifest_says_how_to_finish(tmp_path: Path) -> None:
    """Kills xǁCohortStoreǁopen__mutmut_10 (the message dropped)."""
    write_json_atomic(tmp_path / "header.json", new_header())
    with pytest.raises(CapeError, match=r"store has no manifest\.parquet; re-run `cape ingest`"):
        CohortStore.open(tmp_path)


def test_quarantine_without_file_has_the_columns(tmp_path: Path) -> None:
    """Kills xǁCohortStoreǁquarantine__mutmut_4 (an empty quarantine without its columns:
    ``quarantine()["reason"]`` would raise)."""
    signals, manifest = _arrays(2)
    store = create_store_from_arrays(tmp_path / "s", signals, manifest)
    (tmp_path / "s" / "quarantine.parquet").unlink()
    assert list(store.quarantine().columns) == QUARANTINE_COLUMNS


def test_file_descriptors_are_reused_and_closed(tmp_path: Path) -> None:
    """Kills xǁCohortStoreǁ_fd__mutmut_1/4/6/11/12/14/15/24 (a new descriptor per read, leaking one
    per ECG, descriptors never closed, the lock taken on every read) and xǁCohortStoreǁclose__mutmut_1..5 (close crashing on a
    fresh store, leaving descriptors open, or breaking later reads)."""
    signals, manifest = _arrays(4)
    store = create_store_from_arrays(tmp_path / "s", signals, manifest, shard_size=2)
    store.close()  # nothing opened yet
    first = store._fd(0)
    assert store._fd(0) == first
    store.read(0)
    store.read(1)
    assert store._fd(0) == first
    other = store._fd(1)
    assert other != first
    store.close()
    assert not _is_open(first) and not _is_open(other)
    np.testing.assert_array_equal(store.read(3), store.read(3))
    store.close()
    # Double-checked locking: the lock is taken only to open a shard, and a descriptor that
    # another thread opened while this one waited for the lock is used, not opened again
    # (xǁCohortStoreǁ_fd__mutmut_11/12: the lock taken on every read; _14/15: a second
    # descriptor opened and the other thread's leaked).
    lock = _RecordingLock()
    store._lock = lock
    first = store._fd(0)
    store._fd(0)
    assert lock.entered == 1
    raced = os.open(tmp_path / "s" / "shards" / "arrays-00001.i16", os.O_RDONLY)
    lock.on_enter = lambda: store._handles.fds.__setitem__("arrays-00001", raced)
    assert store._fd(1) == raced
    assert lock.entered == 2
    store.close()
    assert not _is_open(raced)


def test_pickled_store_opens_its_own_descriptors(tmp_path: Path) -> None:
    """Kills xǁCohortStoreǁ__getstate____mutmut_3/4 (the parent's descriptors pickled along: the
    clone reads through descriptors it does not own, closed under it by the parent)."""
    signals, manifest = _arrays(2)
    store = create_store_from_arrays(tmp_path / "s", signals, manifest)
    expected = store.read(1).copy()
    clone = pickle.loads(pickle.dumps(store))
    assert clone._handles is None
    store.close()
    np.testing.assert_array_equal(clone.read(1), expected)
    clone.close()


def test_read_errors_name_index_and_shard(tmp_path: Path) -> None:
    """Kills xǁCohortStoreǁread_raw__mutmut_4 (``<=``: index == len reaches numpy), _5 (index
    message dropped) and _18 (truncation message dropped)."""
    signals, manifest = _arrays(2)
    store = create_store_from_arrays(tmp_path / "s", signals, manifest)
    with pytest.raises(IndexError, match=r"^ECG index 2 out of range for a store of 2$"):
        store.read(2)
    with pytest.raises(IndexError, match=r"^ECG index -1 out of range for a store of 2$"):
        store.read(-1)
    os.truncate(tmp_path / "s" / "shards" / "arrays-00000.i16", RECORD_BYTES + 10)
    with pytest.raises(CapeError, match=r"shard arrays-00000 is truncated \(ECG 1\); re-run"):
        CohortStore.open(tmp_path / "s").read(1)


# -- writer: ShardWriter and committed_shards -------------------------------------------------


def test_shard_writer_creates_a_new_store_directory(tmp_path: Path) -> None:
    """Kills xǁShardWriterǁ__init____mutmut_4/6/9 (``parents`` dropped: a writer for a store
    directory that does not exist yet fails)."""
    writer = ShardWriter(tmp_path / "new" / "store", "s")
    writer.commit()
    assert committed_shards(tmp_path / "new" / "store") == {"s"}


def test_append_checks_dtype_and_shape(tmp_path: Path) -> None:
    """Kills xǁShardWriterǁappend__mutmut_1 (``or`` -> ``and``: float samples of the right shape
    written as 8-byte values) and _4 (message dropped)."""
    writer = ShardWriter(tmp_path, "s")
    with pytest.raises(ValueError, match=r"^expected int16 \(8, 4000\), got float64 \(8, 4000\)$"):
        writer.append(np.zeros((8, 4000)), {})
    with pytest.raises(ValueError, match=r"^expected int16 \(8, 4000\), got int16 \(8, 3\)$"):
        writer.append(np.zeros((8, 3), np.int16), {})
    writer.abort()


def test_commit_writes_typed_parts(tmp_path: Path) -> None:
    """Kills xǁShardWriterǁcommit__mutmut_6/8 (an empty quarantine part without its columns) and
    xǁShardWriterǁcommit__mutmut_20..25 (the ``split`` column missing, renamed, ``""`` (an
    empty-string split would count as assigned on rebuild) or overwriting a given split)."""
    writer = ShardWriter(tmp_path, "s")
    writer.append(np.zeros((8, 4000), np.int16), {"record_id": "r", "cohort": "a"})
    writer.commit()
    part = pd.read_parquet(tmp_path / "parts" / "s.parquet")
    assert list(part.columns) == ["record_id", "cohort", "shard", "row", "split"]
    assert part["split"].isna().all()
    quarantine = pd.read_parquet(tmp_path / "parts" / "s.quarantine.parquet")
    assert list(quarantine.columns) == QUARANTINE_COLUMNS
    assert len(quarantine) == 0
    # A split given with the rows is kept (xǁShardWriterǁcommit__mutmut_20/21: overwritten).
    assigned = ShardWriter(tmp_path, "t")
    assigned.append(np.zeros((8, 4000), np.int16), {"record_id": "r", "split": "train"})
    assigned.commit()
    assert pd.read_parquet(tmp_path / "parts" / "t.parquet")["split"].tolist() == ["train"]


def test_abort_removes_an_uncommitted_quarantine_part_and_is_idempotent(tmp_path: Path) -> None:
    """Kills xǁShardWriterǁabort__mutmut_1/2 (a second abort raising FileNotFoundError) and
    _3 (the quarantine part of an uncommitted shard left to count later, or a committed
    shard's removed) and x_committed_shards__mutmut_11/12 (quarantine parts counted as
    committed shards)."""
    rejection = dict.fromkeys(QUARANTINE_COLUMNS, "x")
    kept = ShardWriter(tmp_path, "kept")
    kept.commit([rejection])
    killed = ShardWriter(tmp_path, "killed")
    killed.commit([rejection])
    (tmp_path / "parts" / "killed.parquet").unlink()  # killed between the two renames
    assert committed_shards(tmp_path) == {"kept"}
    killed.abort()
    killed.abort()
    assert not (tmp_path / "parts" / "killed.quarantine.parquet").exists()
    assert not (tmp_path / "shards" / "killed.i16").exists()
    kept.abort()  # committed: its data goes, its quarantine part stays
    assert (tmp_path / "parts" / "kept.quarantine.parquet").exists()


# -- writer: rebuild_manifest -----------------------------------------------------------------


def test_rebuild_reads_quarantine_parts_only_as_rejections(tmp_path: Path) -> None:
    """Kills x_rebuild_manifest__mutmut_11/12 (quarantine parts read as manifest parts) and _14
    (``not in``: only uncommitted shards' rejections counted)."""
    rejection = {
        "cohort": "a",
        "source_file": "f",
        "record_id": "r",
        "patient_id": "p",
        "reason": "unreadable",
        "detail": "d",
    }
    writer = ShardWriter(tmp_path, "s")
    writer.append(
        np.zeros((8, 4000), np.int16),
        {"record_id": "ok", "patient_id": "p", "cohort": "a", "source_file": "g"},
    )
    writer.commit([rejection])
    manifest = rebuild_manifest(tmp_path)
    assert manifest["record_id"].tolist() == ["ok"]
    quarantine = pd.read_parquet(tmp_path / "quarantine.parquet")
    assert quarantine.to_dict("records") == [rejection]


def test_rebuild_of_an_empty_store_writes_typed_empty_tables(tmp_path: Path) -> None:
    """Kills x_rebuild_manifest__mutmut_21/27 (no parts: concat of nothing, or a manifest without
    columns) and _194 (an empty quarantine without columns); through
    create_store_from_arrays also x_create_store_from_arrays__mutmut_30 (``initial=None``:
    an empty store refused)."""
    store = create_store_from_arrays(
        tmp_path / "s", np.zeros((0, 8, 4000), np.float32), _arrays(0)[1]
    )
    assert len(store) == 0
    assert list(store.manifest.columns) == MANIFEST_CORE_COLUMNS
    assert list(store.quarantine().columns) == QUARANTINE_COLUMNS


def test_rebuild_carries_splits_over_across_shards(tmp_path: Path) -> None:
    """Kills x_rebuild_manifest__mutmut_23/25/26 (parts concatenated with repeated row labels:
    the split lookup misaligns or raises) and _46 (``dropna`` on every column: an ECG without a
    patient id loses its split). A new ECG of a known patient joins its split."""
    signals, manifest = _arrays(4)
    manifest["patient_id"] = ["p0", "p0", None, "p1"]
    path = tmp_path / "s"
    store = create_store_from_arrays(path, signals, manifest, shard_size=2)
    write_splits(path, pd.Series(["train", "train", "val", "test"], index=store.manifest.index))
    extra = ShardWriter(path, "arrays-00002")
    extra.append(
        np.full((8, 4000), 3, np.int16),
        {"record_id": "new", "patient_id": "p1", "cohort": "a", "valid_length": 4000},
    )
    extra.commit()
    rebuilt = rebuild_manifest(path)
    assert rebuilt["record_id"].tolist() == ["r0", "r1", "r2", "r3", "new"]
    assert rebuilt["split"].tolist() == ["train", "train", "val", "test", "test"]
    assert rebuilt.index.tolist() == [0, 1, 2, 3, 4]
    assert "index" not in rebuilt.columns


def test_duplicate_ids_are_quarantined_with_the_kept_source(tmp_path: Path) -> None:
    """Kills x_rebuild_manifest__mutmut_80/93/157/159 (``reset_index`` keeping the old index as an
    ``index`` column), _107/116/118 (the detail naming the wrong or no source) and
    _134..155 (quarantine columns renamed)."""
    signals, manifest = _arrays(2)
    manifest["source_file"] = ["orig.dat", "orig.dat"]
    path = tmp_path / "s"
    create_store_from_arrays(path, signals, manifest)
    dup = ShardWriter(path, "zz-dup")
    dup.append(
        np.ones((8, 4000), np.int16),
        {
            "record_id": "r1",
            "patient_id": "p9",
            "cohort": "a",
            "valid_length": 4000,
            "source_file": "other.dat",
        },
    )
    dup.commit()
    rebuilt = rebuild_manifest(path)
    assert rebuilt["record_id"].tolist() == ["r0", "r1"]
    assert rebuilt["source_file"].tolist() == ["orig.dat", "orig.dat"]
    assert rebuilt.index.tolist() == [0, 1]
    assert "index" not in rebuilt.columns
    assert "index" not in pd.read_parquet(path / "manifest.parquet").columns
    quarantine = pd.read_parquet(path / "quarantine.parquet")
    assert quarantine.to_dict("records") == [
        {
            "cohort": "a",
            "source_file": "other.dat",
            "record_id": "r1",
            "patient_id": "p9",
            "reason": "duplicate_id",
            "detail": "record id already stored from orig.dat",
        }
    ]


def test_duplicate_signals_are_quarantined_with_all_columns(tmp_path: Path) -> None:
    """Kills x__duplicate_signals__mutmut_33..46 (quarantine columns renamed) and
    x_rebuild_manifest__mutmut_167/180 (``reset_index`` keeping the old index as a column)."""
    signals, manifest = _arrays(3)
    manifest["signal_hash"] = ["h0", "h1", "h0"]
    manifest["source_file"] = ["f0", "f1", "f2"]
    store = create_store_from_arrays(tmp_path / "s", signals, manifest)
    assert store.manifest["record_id"].tolist() == ["r0", "r1"]
    assert store.manifest.index.tolist() == [0, 1]
    assert "index" not in store.manifest.columns
    quarantine = store.quarantine()
    assert quarantine.to_dict("records") == [
        {
            "cohort": "a",
            "source_file": "f2",
            "record_id": "r2",
            "patient_id": "p1",
            "reason": "duplicate_signal",
            "detail": "the same stored signal as record r0 of cohort a (patient p0)",
        }
    ]


def test_write_splits_length_mismatch_message(tmp_path: Path) -> None:
    """Kills x_write_splits__mutmut_7 (message dropped)."""
    signals, manifest = _arrays(2)
    create_store_from_arrays(tmp_path / "s", signals, manifest)
    with pytest.raises(ValueError, match=r"^3 splits for a manifest of 2 rows$"):
        write_splits(tmp_path / "s", pd.Series(["a", "b", "c"]))


# -- writer: create_store_from_arrays ---------------------------------------------------------


def test_create_store_fills_defaults_and_shards_in_order(tmp_path: Path) -> None:
    """Kills x_create_store_from_arrays__mutmut_57..60 (default cohort provenance renamed),
    _68/69 (an ``index`` column added), _75/76/87 (shards written from the wrong rows),
    _97..114 (default ``source_file``, ``source_sampling_rate_hz`` or ``split`` missing,
    renamed or wrong)."""
    signals, manifest = _arrays(5)
    manifest.index = [10, 11, 12, 13, 14]
    store = create_store_from_arrays(tmp_path / "s", signals, manifest, shard_size=2)
    assert store.header["cohorts"] == {"a": {"source": "arrays"}}
    assert list(store.manifest.columns) == [
        "record_id",
        "patient_id",
        "cohort",
        "valid_length",
        "source_file",
        "source_sampling_rate_hz",
        "split",
        "shard",
        "row",
    ]
    assert store.manifest["record_id"].tolist() == [f"r{k}" for k in range(5)]
    assert store.manifest["shard"].tolist() == ["arrays-00000"] * 2 + ["arrays-00001"] * 2 + [
        "arrays-00002"
    ]
    assert store.manifest["row"].tolist() == [0, 1, 0, 1, 0]
    assert store.manifest["source_file"].tolist() == [""] * 5
    assert store.manifest["source_sampling_rate_hz"].tolist() == [400.0] * 5
    assert store.manifest["source_sampling_rate_hz"].dtype == np.float64
    assert store.manifest["split"].isna().all()
    assert sorted(p.name for p in (tmp_path / "s" / "shards").iterdir()) == [
        "arrays-00000.i16",
        "arrays-00001.i16",
        "arrays-00002.i16",
    ]
    for k in range(5):
        np.testing.assert_allclose(store.read(k), signals[k], atol=0.5e-3 + 1e-7)


def test_create_store_keeps_given_cohort_info(tmp_path: Path) -> None:
    """Kills x_create_store_from_arrays__mutmut_48/52 (the caller's cohort provenance dropped)."""
    signals, manifest = _arrays(2)
    info = {"a": {"source": "sim", "version": 2}}
    store = create_store_from_arrays(tmp_path / "s", signals, manifest, cohort_info=info)
    assert store.header["cohorts"] == {"a": {"source": "sim", "version": 2}}


def test_create_store_directory_handling(tmp_path: Path) -> None:
    """Kills x_create_store_from_arrays__mutmut_5 (an existing empty directory crashing the
    emptiness check), _6 (message dropped) and _38..43 (``mkdir`` without ``parents`` or
    ``exist_ok``: a nested new path or an existing empty directory refused)."""
    signals, manifest = _arrays(1)
    create_store_from_arrays(tmp_path / "deep" / "er" / "s", signals, manifest)
    (tmp_path / "empty").mkdir()
    assert len(create_store_from_arrays(tmp_path / "empty", signals, manifest)) == 1
    with pytest.raises(ValueError, match=r"empty exists and is not empty; write a new store"):
        create_store_from_arrays(tmp_path / "empty", signals, manifest)


def test_create_store_validation_messages(tmp_path: Path) -> None:
    """Kills x_create_store_from_arrays__mutmut_9/14 (``or`` -> ``and``: a wrong slot length
    let through; message dropped), _16 (message dropped), _17/28/29 (missing columns not
    checked, message dropped or wrong), _33 (``>=``: exactly 32.767 mV refused) and _34..37
    (range message dropped or altered)."""
    signals, manifest = _arrays(2)
    with pytest.raises(ValueError, match=r"^signals must be \(n, 8, 4000\), got \(2, 8, 3999\)$"):
        create_store_from_arrays(tmp_path / "a", signals[:, :, :3999], manifest)
    with pytest.raises(ValueError, match=r"^2 manifest rows for 1 signals$"):
        create_store_from_arrays(tmp_path / "b", signals[:1], manifest)
    with pytest.raises(ValueError, match=r"^manifest lacks columns \['cohort', 'valid_length'\]$"):
        create_store_from_arrays(
            tmp_path / "c", signals, manifest.drop(columns=["valid_length", "cohort"])
        )
    too_big = signals.astype(np.float64)
    too_big[1, 3, 7] = -32.768
    with pytest.raises(
        ValueError, match=r"^signals exceed the int16 microvolt range \(±32\.767 mV\)$"
    ):
        create_store_from_arrays(tmp_path / "d", too_big, manifest)
    edge = signals.astype(np.float64)
    edge[1, 3, 7] = -32.767
    edge[0, 0, 0] = 32.767
    store = create_store_from_arrays(tmp_path / "e", edge, manifest)
    assert store.read_raw(1)[3, 7] == -32767
    assert store.read_raw(0)[0, 0] == 32767
