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

Reads go through ``os.pread`` of exactly one record's bytes: with a cold page
cache this is an order of magnitude faster than ``mmap`` (whose read-ahead
pulls megabytes per 64 KB record), and it is just as fast when warm.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cape.errors import CapeError
from cape.leads import STORE_LEADS

SCHEMA_VERSION = 1
SAMPLING_RATE_HZ = 400
SLOT_SAMPLES = 4000  # 10 s at 400 Hz
N_LEADS = len(STORE_LEADS)
RECORD_BYTES = N_LEADS * SLOT_SAMPLES * 2  # int16
MICROVOLTS_PER_UNIT = 1.0  # int16 value 1 == 1 µV
INT16_LIMIT_MV = 32.767

HEADER_FILE = "header.json"
MANIFEST_FILE = "manifest.parquet"
QUARANTINE_FILE = "quarantine.parquet"
SHARD_DIR = "shards"
PART_DIR = "parts"

QUARANTINE_COLUMNS = ["cohort", "source_file", "record_id", "patient_id", "reason", "detail"]
MANIFEST_CORE_COLUMNS = [
    "record_id",
    "patient_id",
    "cohort",
    "shard",
    "row",
    "valid_length",
    "source_sampling_rate_hz",
    "source_file",
    "split",
]


def new_header() -> dict[str, Any]:
    """The header of an empty store."""
    return {
        "schema_version": SCHEMA_VERSION,
        "format": "cape-cohort-store",
        "sampling_rate_hz": SAMPLING_RATE_HZ,
        "leads": list(STORE_LEADS),
        "units": "int16 microvolts",
        "slot_samples": SLOT_SAMPLES,
        "record_bytes": RECORD_BYTES,
        "cohorts": {},
    }


def read_header(path: Path) -> dict[str, Any]:
    header_path = path / HEADER_FILE
    if not header_path.is_file():
        raise CapeError(
            f"{path} is not a CAPE cohort store (no {HEADER_FILE}); run `cape ingest` first"
        )
    try:
        header = json.loads(header_path.read_text())
    except json.JSONDecodeError as error:
        raise CapeError(f"{header_path}: corrupt store header ({error})") from error
    if header.get("schema_version") != SCHEMA_VERSION:
        raise CapeError(
            f"{header_path}: store schema version {header.get('schema_version')} is not "
            f"supported (this CAPE reads version {SCHEMA_VERSION})"
        )
    return header


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` via a temporary file and an atomic rename."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def rebuild_manifest(path: Path) -> pd.DataFrame:
    """Concatenate the committed parts into ``manifest.parquet`` and ``quarantine.parquet``.

    Splits already written into the previous manifest are carried over by
    ``(cohort, record_id)``, so adding a cohort never loses another's splits.
    """
    part_dir = path / PART_DIR
    manifests, quarantines = [], []
    for part in sorted(part_dir.glob("*.parquet")):
        if part.name.endswith(".quarantine.parquet"):
            quarantines.append(pd.read_parquet(part))
        else:
            manifests.append(pd.read_parquet(part))
    manifest = (
        pd.concat(manifests, ignore_index=True)
        if manifests
        else pd.DataFrame({c: pd.Series(dtype=object) for c in MANIFEST_CORE_COLUMNS})
    )
    old_path = path / MANIFEST_FILE
    if old_path.is_file() and len(manifest):
        old = pd.read_parquet(old_path, columns=["cohort", "record_id", "split"])
        old = old.dropna(subset=["split"])
        if len(old):
            key = manifest["cohort"].astype(str) + "\x00" + manifest["record_id"].astype(str)
            old_key = old["cohort"].astype(str) + "\x00" + old["record_id"].astype(str)
            carried = pd.Series(old["split"].to_numpy(), index=old_key.to_numpy())
            manifest["split"] = key.map(carried).where(lambda s: s.notna(), manifest["split"])
            # New ECGs of a patient who already has a split join that split.
            old_patients = pd.read_parquet(old_path, columns=["cohort", "patient_id", "split"])
            old_patients = old_patients.dropna(subset=["split"]).drop_duplicates(
                ["cohort", "patient_id"]
            )
            patient_key = (
                manifest["cohort"].astype(str) + "\x00" + manifest["patient_id"].astype(str)
            )
            by_patient = pd.Series(
                old_patients["split"].to_numpy(),
                index=(
                    old_patients["cohort"].astype(str)
                    + "\x00"
                    + old_patients["patient_id"].astype(str)
                ).to_numpy(),
            )
            missing = manifest["split"].isna()
            manifest.loc[missing, "split"] = patient_key[missing].map(by_patient)
    manifest = manifest.sort_values(["cohort", "shard", "row"], kind="stable").reset_index(
        drop=True
    )
    # A record id stored twice for one cohort (two sources, or a repeated id in one
    # source): the first stored copy wins, the others are quarantined.
    duplicated = manifest.duplicated(["cohort", "record_id"], keep="first")
    if duplicated.any():
        first = manifest[~duplicated].set_index(["cohort", "record_id"])["source_file"]
        dupes = manifest[duplicated]
        kept_from = [
            first.get((c, r), "") for c, r in zip(dupes["cohort"], dupes["record_id"], strict=True)
        ]
        quarantines.append(
            pd.DataFrame(
                {
                    "cohort": dupes["cohort"].to_numpy(),
                    "source_file": dupes["source_file"].to_numpy(),
                    "record_id": dupes["record_id"].to_numpy(),
                    "patient_id": dupes["patient_id"].to_numpy(),
                    "reason": "duplicate_id",
                    "detail": [f"record id already stored from {k}" for k in kept_from],
                }
            )
        )
        manifest = manifest[~duplicated].reset_index(drop=True)
    write_parquet_atomic(manifest, old_path)
    quarantine = (
        pd.concat([q for q in quarantines if len(q)], ignore_index=True)
        if any(len(q) for q in quarantines)
        else pd.DataFrame({c: pd.Series(dtype=object) for c in QUARANTINE_COLUMNS})
    )
    write_parquet_atomic(quarantine, path / QUARANTINE_FILE)
    return manifest


class ShardWriter:
    """Writes one shard: int16 records appended to a file, then committed with its manifest part.

    Not for direct use by most code: :mod:`cape.ingest` drives it.
    """

    def __init__(self, store_path: Path, name: str) -> None:
        self.store_path = Path(store_path)
        self.name = name
        (self.store_path / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        (self.store_path / PART_DIR).mkdir(parents=True, exist_ok=True)
        self.data_path = self.store_path / SHARD_DIR / f"{name}.i16"
        self._file = open(self.data_path, "wb")
        self.rows: list[dict[str, Any]] = []

    def append(self, signal_uv: np.ndarray, row: dict[str, Any]) -> None:
        """Append one record.

        Args:
            signal_uv: ``(8, 4000)`` int16 microvolts.
            row: manifest fields (``shard`` and ``row`` are filled in here).
        """
        if signal_uv.shape != (N_LEADS, SLOT_SAMPLES) or signal_uv.dtype != np.int16:
            raise ValueError(f"expected int16 (8, 4000), got {signal_uv.dtype} {signal_uv.shape}")
        self._file.write(np.ascontiguousarray(signal_uv).tobytes())
        self.rows.append({**row, "shard": self.name, "row": len(self.rows)})

    def commit(self, rejections: Sequence[dict[str, Any]] = ()) -> None:
        """Flush the data to disk, then atomically publish the manifest and quarantine parts."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        part_dir = self.store_path / PART_DIR
        quarantine = pd.DataFrame(list(rejections), columns=QUARANTINE_COLUMNS)
        write_parquet_atomic(quarantine, part_dir / f"{self.name}.quarantine.parquet")
        manifest = (
            pd.DataFrame(self.rows) if self.rows else pd.DataFrame(columns=MANIFEST_CORE_COLUMNS)
        )
        if "split" not in manifest:
            manifest["split"] = None
        # The manifest part is written last: its existence marks the shard committed.
        write_parquet_atomic(manifest, part_dir / f"{self.name}.parquet")

    def abort(self) -> None:
        self._file.close()
        self.data_path.unlink(missing_ok=True)


def committed_shards(store_path: Path) -> set[str]:
    part_dir = Path(store_path) / PART_DIR
    if not part_dir.is_dir():
        return set()
    return {
        p.name[: -len(".parquet")]
        for p in part_dir.glob("*.parquet")
        if not p.name.endswith(".quarantine.parquet")
    }


@dataclass
class _FileHandles:
    pid: int
    fds: dict[str, int]


class CohortStore:
    """Read access to a cohort store; cheap to pickle into DataLoader workers.

    File descriptors are opened lazily in each process (checked by pid), so a
    store built in the parent can be used by forked or spawned workers.

    Example:
        >>> store = CohortStore.open("stores/demo")  # doctest: +SKIP
        >>> x = store.read(0)  # float32 (8, 4000) in mV
    """

    def __init__(self, path: Path, header: dict[str, Any], manifest: pd.DataFrame) -> None:
        self.path = Path(path)
        self.header = header
        self.manifest = manifest
        self.valid_lengths = manifest["valid_length"].to_numpy(dtype=np.int32)
        shard_names = manifest["shard"].astype(str).to_numpy()
        self._shard_names = sorted(set(shard_names))
        lookup = {name: k for k, name in enumerate(self._shard_names)}
        self._shard_index = np.array([lookup[s] for s in shard_names], dtype=np.int32)
        self._offsets = manifest["row"].to_numpy(dtype=np.int64) * RECORD_BYTES
        self._handles: _FileHandles | None = None
        self._lock = threading.Lock()

    # -- construction ---------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> CohortStore:
        """Open a store directory.

        Raises:
            CapeError: the path does not exist, is not a store, or has no manifest.
        """
        path = Path(path)
        if not path.exists():
            raise CapeError(f"store {path} does not exist")
        header = read_header(path)
        manifest_path = path / MANIFEST_FILE
        if not manifest_path.is_file():
            raise CapeError(
                f"{path}: store has no {MANIFEST_FILE}; re-run `cape ingest` to finish it"
            )
        manifest = pd.read_parquet(manifest_path)
        return cls(path, header, manifest)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- metadata -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.manifest)

    @property
    def cohorts(self) -> list[str]:
        return sorted(self.manifest["cohort"].astype(str).unique().tolist())

    @property
    def sampling_rate_hz(self) -> int:
        return int(self.header["sampling_rate_hz"])

    @property
    def lead_names(self) -> list[str]:
        return list(self.header["leads"])

    def quarantine(self) -> pd.DataFrame:
        path = self.path / QUARANTINE_FILE
        if not path.is_file():
            return pd.DataFrame(columns=QUARANTINE_COLUMNS)
        return pd.read_parquet(path)

    def fingerprint(self) -> str:
        """A short hash of the manifest's ids, shards and splits (changes when the data does)."""
        import hashlib

        cols = ["cohort", "record_id", "patient_id", "shard", "row", "valid_length", "split"]
        frame = self.manifest[[c for c in cols if c in self.manifest]]
        digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
        return digest.hexdigest()[:16]

    # -- reading --------------------------------------------------------------------
    def _fd(self, shard: int) -> int:
        pid = os.getpid()
        if self._handles is None or self._handles.pid != pid:
            self._handles = _FileHandles(pid=pid, fds={})
        name = self._shard_names[shard]
        fd = self._handles.fds.get(name)
        if fd is None:
            with self._lock:
                fd = self._handles.fds.get(name)
                if fd is None:
                    fd = os.open(self.path / SHARD_DIR / f"{name}.i16", os.O_RDONLY)
                    self._handles.fds[name] = fd
        return fd

    def read_raw(self, index: int) -> np.ndarray:
        """The stored int16 microvolt slot of ECG ``index``: ``(8, 4000)``."""
        if not 0 <= index < len(self.valid_lengths):
            raise IndexError(f"ECG index {index} out of range for a store of {len(self)}")
        fd = self._fd(int(self._shard_index[index]))
        buffer = os.pread(fd, RECORD_BYTES, int(self._offsets[index]))
        if len(buffer) != RECORD_BYTES:
            raise CapeError(
                f"{self.path}: shard {self._shard_names[self._shard_index[index]]} is truncated "
                f"(ECG {index}); re-run ingest"
            )
        return np.frombuffer(buffer, dtype=np.int16).reshape(N_LEADS, SLOT_SAMPLES)

    def read(self, index: int) -> np.ndarray:
        """ECG ``index`` as float32 millivolts, ``(8, 4000)``; zeros after its valid length."""
        return self.read_raw(index).astype(np.float32) * np.float32(1e-3)

    def read_many(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Several ECGs as float32 millivolts, ``(k, 8, 4000)``."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), N_LEADS, SLOT_SAMPLES), dtype=np.float32)
        for k, index in enumerate(indices):
            out[k] = self.read_raw(int(index))
        out *= np.float32(1e-3)
        return out

    def close(self) -> None:
        if self._handles is not None and self._handles.pid == os.getpid():
            for fd in self._handles.fds.values():
                os.close(fd)
        self._handles = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def create_store_from_arrays(
    path: str | Path,
    signals_mv: np.ndarray,
    manifest: pd.DataFrame,
    shard_size: int = 4096,
    cohort_info: dict[str, dict[str, Any]] | None = None,
) -> CohortStore:
    """Write a store directly from preprocessed arrays (tests, simulators, conversions).

    Args:
        path: store directory (created).
        signals_mv: ``(n, 8, 4000)`` float millivolts at 400 Hz.
        manifest: ``n`` rows with at least ``record_id``, ``patient_id``, ``cohort``,
            ``valid_length``; other columns are kept.
        shard_size: ECGs per shard file.
        cohort_info: optional header entries per cohort.

    Raises:
        ValueError: shapes disagree or values exceed the int16 microvolt range.
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise ValueError(
            f"{path} exists and is not empty; write a new store into an empty directory"
        )
    signals_mv = np.asarray(signals_mv)
    if signals_mv.ndim != 3 or signals_mv.shape[1:] != (N_LEADS, SLOT_SAMPLES):
        raise ValueError(f"signals must be (n, 8, 4000), got {signals_mv.shape}")
    if len(manifest) != len(signals_mv):
        raise ValueError(f"{len(manifest)} manifest rows for {len(signals_mv)} signals")
    missing = {"record_id", "patient_id", "cohort", "valid_length"} - set(manifest.columns)
    if missing:
        raise ValueError(f"manifest lacks columns {sorted(missing)}")
    if np.abs(signals_mv).max(initial=0.0) > INT16_LIMIT_MV:
        raise ValueError("signals exceed the int16 microvolt range (±32.767 mV)")
    path.mkdir(parents=True, exist_ok=True)
    header = new_header()
    for cohort in manifest["cohort"].astype(str).unique():
        header["cohorts"][cohort] = dict((cohort_info or {}).get(cohort, {"source": "arrays"}))
    write_json_atomic(path / HEADER_FILE, header)
    rows = manifest.reset_index(drop=True).to_dict("records")
    for start in range(0, len(rows), shard_size):
        writer = ShardWriter(path, f"arrays-{start // shard_size:05d}")
        for k in range(start, min(start + shard_size, len(rows))):
            row = dict(rows[k])
            row.setdefault("source_file", "")
            row.setdefault("source_sampling_rate_hz", float(SAMPLING_RATE_HZ))
            row.setdefault("split", None)
            writer.append(np.rint(signals_mv[k] * 1e3).astype(np.int16), row)
        writer.commit()
    rebuild_manifest(path)
    return CohortStore.open(path)


def write_splits(path: str | Path, splits: pd.Series) -> pd.DataFrame:
    """Write a ``split`` column (aligned with the manifest's index) into ``manifest.parquet``.

    Later ingests keep these splits (see :func:`rebuild_manifest`).
    """
    path = Path(path)
    manifest = pd.read_parquet(path / MANIFEST_FILE)
    if len(splits) != len(manifest):
        raise ValueError(f"{len(splits)} splits for a manifest of {len(manifest)} rows")
    manifest["split"] = splits.to_numpy()
    write_parquet_atomic(manifest, path / MANIFEST_FILE)
    return manifest
