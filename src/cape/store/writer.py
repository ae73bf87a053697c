"""Writing a store: shards committed with their manifest parts, and the manifest rebuilt from them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cape.store.layout import (
    HEADER_FILE,
    INT16_LIMIT_MV,
    MANIFEST_CORE_COLUMNS,
    MANIFEST_FILE,
    N_LEADS,
    PART_DIR,
    QUARANTINE_COLUMNS,
    QUARANTINE_FILE,
    SAMPLING_RATE_HZ,
    SHARD_DIR,
    SLOT_SAMPLES,
    new_header,
    write_json_atomic,
    write_parquet_atomic,
)

if TYPE_CHECKING:
    from cape.store.reader import CohortStore


def rebuild_manifest(path: Path) -> pd.DataFrame:
    """Concatenate the committed parts into ``manifest.parquet`` and ``quarantine.parquet``.

    Splits already written into the previous manifest are carried over by
    ``(cohort, record_id)``, so adding a cohort never loses another's splits.
    """
    part_dir = path / PART_DIR
    manifests, quarantines = [], []
    committed = committed_shards(path)
    for part in sorted(part_dir.glob("*.parquet")):
        if part.name.endswith(".quarantine.parquet"):
            # Rejections count with their shard: a quarantine part whose manifest part
            # was never written belongs to a shard that was never committed.
            if part.name[: -len(".quarantine.parquet")] in committed:
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
        old = pd.read_parquet(old_path, columns=["cohort", "record_id", "patient_id", "split"])
        old = old.dropna(subset=["split"])
        if len(old):
            # An ECG keeps its split; a new ECG of a patient who has one joins that split.
            for id_column in ("record_id", "patient_id"):
                known = old.drop_duplicates(["cohort", id_column])
                lookup = pd.Series(known["split"].to_numpy(), index=_key(known, id_column))
                missing = manifest["split"].isna()
                manifest.loc[missing, "split"] = _key(manifest[missing], id_column).map(lookup)
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
    if "signal_hash" in manifest and len(manifest):
        quarantines.append(_duplicate_signals(manifest))
        manifest = manifest[
            ~(manifest["signal_hash"].notna() & manifest.duplicated(["signal_hash"], keep="first"))
        ].reset_index(drop=True)
    write_parquet_atomic(manifest, old_path)
    quarantine = (
        pd.concat([q for q in quarantines if len(q)], ignore_index=True)
        if any(len(q) for q in quarantines)
        else pd.DataFrame({c: pd.Series(dtype=object) for c in QUARANTINE_COLUMNS})
    )
    write_parquet_atomic(quarantine, path / QUARANTINE_FILE)
    return manifest


def _duplicate_signals(manifest: pd.DataFrame) -> pd.DataFrame:
    """Quarantine rows for stored signals identical to an earlier one (any cohort).

    The same recording under another id or patient would put one ECG into two
    patients (or twice into one), leaking across splits; the first copy stays.
    """
    hashed = manifest["signal_hash"].notna()
    duplicated = hashed & manifest.duplicated(["signal_hash"], keep="first")
    if not duplicated.any():
        return pd.DataFrame(columns=QUARANTINE_COLUMNS)
    first = manifest[hashed & ~duplicated].set_index("signal_hash")
    dupes = manifest[duplicated]
    details = [
        f"the same stored signal as record {first.at[h, 'record_id']} of cohort "
        f"{first.at[h, 'cohort']} (patient {first.at[h, 'patient_id']})"
        for h in dupes["signal_hash"]
    ]
    return pd.DataFrame(
        {
            "cohort": dupes["cohort"].to_numpy(),
            "source_file": dupes["source_file"].to_numpy(),
            "record_id": dupes["record_id"].to_numpy(),
            "patient_id": dupes["patient_id"].to_numpy(),
            "reason": "duplicate_signal",
            "detail": details,
        }
    )


def _key(frame: pd.DataFrame, id_column: str) -> pd.Series:
    return frame["cohort"].astype(str) + "\x00" + frame[id_column].astype(str)


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
        """Flush the data to disk, then atomically publish the quarantine and manifest parts.

        The manifest part is renamed into place last and is the commit: the
        quarantine part of a shard without one is ignored by
        :func:`rebuild_manifest` and rewritten when the task is run again.
        """
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
        """Remove everything this shard wrote; it was never committed."""
        self._file.close()
        self.data_path.unlink(missing_ok=True)
        if self.name not in committed_shards(self.store_path):
            part = self.store_path / PART_DIR / f"{self.name}.quarantine.parquet"
            part.unlink(missing_ok=True)


def committed_shards(store_path: Path) -> set[str]:
    part_dir = Path(store_path) / PART_DIR
    if not part_dir.is_dir():
        return set()
    return {
        p.name[: -len(".parquet")]
        for p in part_dir.glob("*.parquet")
        if not p.name.endswith(".quarantine.parquet")
    }


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
    from cape.store.reader import CohortStore

    return CohortStore.open(path)
