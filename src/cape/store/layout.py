"""The store's on-disk layout: constants, file names and the JSON header."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from cape.errors import CapeError
from cape.leads import STORE_LEADS

SCHEMA_VERSION = 1
SAMPLING_RATE_HZ = 400
SLOT_SAMPLES = 4000  # 10 s at 400 Hz
N_LEADS = len(STORE_LEADS)
RECORD_BYTES = N_LEADS * SLOT_SAMPLES * 2  # int16
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
