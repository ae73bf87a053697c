import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest

from cape.errors import CapeError
from cape.store import (
    RECORD_BYTES,
    CohortStore,
    ShardWriter,
    create_store_from_arrays,
    rebuild_manifest,
    write_splits,
)


def _arrays(n=10, seed=0):
    rng = np.random.default_rng(seed)
    signals = rng.normal(scale=0.5, size=(n, 8, 4000)).astype(np.float32)
    manifest = pd.DataFrame(
        {
            "record_id": [f"r{k}" for k in range(n)],
            "patient_id": [f"p{k // 2}" for k in range(n)],
            "cohort": ["a" if k < n // 2 else "b" for k in range(n)],
            "valid_length": [4000 if k % 3 else 2800 for k in range(n)],
            "age": np.linspace(20, 80, n),
        }
    )
    return signals, manifest


def test_round_trip_within_one_microvolt(tmp_path):
    signals, manifest = _arrays()
    store = create_store_from_arrays(tmp_path / "s", signals, manifest, shard_size=3)
    assert len(store) == 10
    assert store.cohorts == ["a", "b"]
    assert RECORD_BYTES == 64_000
    for k in range(10):
        row = store.manifest.iloc[k]
        original = signals[int(row["record_id"][1:])]
        np.testing.assert_allclose(store.read(k), original, atol=0.5e-3 + 1e-7)
    many = store.read_many([3, 1, 3])
    np.testing.assert_array_equal(many[0], store.read(3))
    np.testing.assert_array_equal(many[1], store.read(1))
    assert store.read(0).dtype == np.float32
    assert list(store.valid_lengths) == list(store.manifest["valid_length"])


def _read_in_worker(store_and_index):
    store, index = store_and_index
    return store.read(index)


def test_store_pickles_into_worker_processes(tmp_path):
    signals, manifest = _arrays()
    store = create_store_from_arrays(tmp_path / "s", signals, manifest)
    store.read(0)  # open a descriptor in the parent first
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone.read(5), store.read(5))
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_read_in_worker, [(store, k) for k in range(4)]))
    for k, result in enumerate(results):
        np.testing.assert_array_equal(result, store.read(k))


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(CapeError, match="does not exist"):
        CohortStore.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CapeError, match="not a CAPE cohort store"):
        CohortStore.open(tmp_path / "empty")


def test_index_out_of_range(tmp_path):
    signals, manifest = _arrays(4)
    store = create_store_from_arrays(tmp_path / "s", signals, manifest)
    with pytest.raises(IndexError):
        store.read(4)


def test_uncommitted_shard_is_ignored_and_duplicates_quarantined(tmp_path):
    signals, manifest = _arrays(4)
    path = tmp_path / "s"
    create_store_from_arrays(path, signals, manifest)
    # A shard that was written but never committed (killed ingest) is invisible.
    orphan = ShardWriter(path, "orphan")
    orphan.append(
        np.zeros((8, 4000), np.int16), {"record_id": "x", "patient_id": "p", "cohort": "a"}
    )
    orphan._file.close()
    # A committed shard repeating an existing id: first copy kept, second quarantined.
    dup = ShardWriter(path, "zz-dup")
    row = {
        "record_id": "r0",
        "patient_id": "p0",
        "cohort": "a",
        "valid_length": 4000,
        "source_file": "other.dat",
    }
    dup.append(np.ones((8, 4000), np.int16), row)
    dup.commit()
    manifest_after = rebuild_manifest(path)
    assert len(manifest_after) == 4
    store = CohortStore.open(path)
    quarantine = store.quarantine()
    assert list(quarantine["reason"]) == ["duplicate_id"]
    assert quarantine["source_file"].iloc[0] == "other.dat"


def test_splits_survive_rebuild(tmp_path):
    signals, manifest = _arrays(6)
    path = tmp_path / "s"
    store = create_store_from_arrays(path, signals, manifest)
    splits = pd.Series(["train", "train", "val", "val", "test", "test"], index=store.manifest.index)
    write_splits(path, splits)
    rebuilt = rebuild_manifest(path)
    assert list(rebuilt["split"]) == list(splits)


def test_fingerprint_changes_with_data(tmp_path):
    signals, manifest = _arrays(6)
    a = create_store_from_arrays(tmp_path / "a", signals, manifest)
    b = create_store_from_arrays(tmp_path / "b", signals[:5], manifest.iloc[:5])
    assert a.fingerprint() == CohortStore.open(tmp_path / "a").fingerprint()
    assert a.fingerprint() != b.fingerprint()


def _rewrite_shard_bytes(store_path, shard, offset, new_bytes):
    with open(store_path / "shards" / f"{shard}.i16", "r+b") as handle:
        handle.seek(offset)
        handle.write(new_bytes)


@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_fingerprint_changes_when_signals_change_under_the_same_manifest(tmp_path, which):
    """One ECG's samples rewritten in place (the manifest, sizes and ids unchanged).

    Bug caught: ``CohortStore.fingerprint`` hashing the manifest only -- features
    embedded from a store re-ingested with other preprocessing (or with a shard
    swapped in) would carry the old store's fingerprint, and the report and the
    feature-set check would call them the same data. With 6 ECGs every ECG is
    one of the sampled ones, so a change to any single one must show.
    """
    signals, manifest = _arrays(6)
    store = create_store_from_arrays(tmp_path / "s", signals, manifest, shard_size=4)
    before = store.fingerprint()
    index = {"first": 0, "middle": 3, "last": 5}[which]
    row = store.manifest.iloc[index]
    offset = int(row["row"]) * RECORD_BYTES + 2 * 100  # lead I, sample 100
    old = store.read_raw(index)[0, 100]
    _rewrite_shard_bytes(store.path, row["shard"], offset, np.int16(old + 1).tobytes())
    reopened = CohortStore.open(store.path)
    assert reopened.read_raw(index)[0, 100] == old + 1
    pd.testing.assert_frame_equal(reopened.manifest, store.manifest)
    assert reopened.fingerprint() != before


def test_fingerprint_sees_every_shard_of_a_large_store_and_ignores_its_path(tmp_path):
    """Beyond the sampled ECGs, each shard still contributes its size and middle block.

    Bug caught: a fingerprint that samples only a fixed number of ECGs would miss a
    shard (here one of 40, none of whose ECGs is sampled) rewritten in place; and a
    fingerprint hashing the path or the mtime would change when a store is copied.
    """
    import shutil

    from cape.store.fingerprint import SAMPLED_RECORDS

    n = 2 * SAMPLED_RECORDS + 16  # more ECGs than are sampled whole
    rng = np.random.default_rng(1)
    signals = rng.normal(scale=0.5, size=(n, 8, 4000)).astype(np.float32)
    manifest = pd.DataFrame(
        {
            "record_id": [f"r{k}" for k in range(n)],
            "patient_id": [f"p{k}" for k in range(n)],
            "cohort": "a",
            "valid_length": 4000,
        }
    )
    store = create_store_from_arrays(tmp_path / "s", signals, manifest, shard_size=1)
    before = store.fingerprint()
    shutil.copytree(store.path, tmp_path / "copy")
    assert CohortStore.open(tmp_path / "copy").fingerprint() == before
    sampled = set(
        np.unique(np.linspace(0, n - 1, num=SAMPLED_RECORDS).round().astype(np.int64)).tolist()
    )
    index = next(k for k in range(n) if k not in sampled)
    row = store.manifest.iloc[index]
    # A one-ECG shard: its middle block is that ECG's first 4 KB.
    _rewrite_shard_bytes(store.path, row["shard"], int(row["row"]) * RECORD_BYTES, b"\x01\x00")
    assert CohortStore.open(store.path).fingerprint() != before


def test_fingerprint_changes_with_signal_hash_column(tmp_path):
    """A re-ingest records new per-ECG hashes; the fingerprint must follow them even
    for ECGs outside the sampled ones (bug caught: the column left out)."""
    signals, manifest = _arrays(6)
    store = create_store_from_arrays(tmp_path / "s", signals, manifest)
    changed = store.manifest.copy()
    changed["signal_hash"] = [f"h{k}" for k in range(len(changed))]
    other = changed.copy()
    other.loc[2, "signal_hash"] = "different"
    first = CohortStore(store.path, store.header, changed).fingerprint()
    assert first != CohortStore(store.path, store.header, other).fingerprint()


def test_identical_signals_keep_the_first_copy_in_any_cohort(tmp_path):
    signals = np.random.default_rng(0).normal(0, 0.5, size=(4, 8, 4000)).astype(np.float32)
    signals[2] = signals[0]  # the same recording under another id, patient and cohort
    manifest = pd.DataFrame(
        {
            "record_id": ["a", "b", "c", "d"],
            "patient_id": ["p1", "p2", "p3", "p4"],
            "cohort": ["x", "x", "y", "y"],
            "valid_length": 4000,
            "signal_hash": ["h0", "h1", "h0", None],  # None: a store written without hashes
        }
    )
    store = create_store_from_arrays(tmp_path / "s", signals, manifest)
    assert store.manifest["record_id"].tolist() == ["a", "b", "d"]
    quarantine = pd.read_parquet(tmp_path / "s" / "quarantine.parquet")
    assert quarantine["reason"].tolist() == ["duplicate_signal"]
    assert quarantine["record_id"].tolist() == ["c"]
    assert "record a of cohort x (patient p1)" in quarantine["detail"].iloc[0]


def test_quarantine_part_counts_only_with_its_manifest_part(tmp_path):
    row = {"cohort": "x", "source_file": "f", "record_id": "r", "patient_id": "p"}
    rejection = {**row, "reason": "unreadable", "detail": "d"}
    committed = ShardWriter(tmp_path, "committed")
    committed.commit([rejection])
    aborted = ShardWriter(tmp_path, "aborted")
    aborted.commit([rejection])
    (tmp_path / "parts" / "aborted.parquet").unlink()  # killed between the two renames
    rebuild_manifest(tmp_path)
    assert len(pd.read_parquet(tmp_path / "quarantine.parquet")) == 1
    failed = ShardWriter(tmp_path, "failed")
    failed.abort()
    assert not list((tmp_path / "parts").glob("failed*"))
