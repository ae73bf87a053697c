"""Generic WFDB folder + metadata table reader (MIMIC-IV-ECG and most PhysioNet sets).

Layout::

    SOURCE/
      metadata.csv            one row per record (or .parquet, or MIMIC's record_list.csv)
      any/sub/folders/rec.hea WFDB header (+ rec.dat)

The table's ``path`` column holds each record's path relative to ``SOURCE``
without extension. Column names are configurable (option ``columns``); the
defaults are the ones CAPE's simulator writes, with MIMIC-IV-ECG fallbacks
(``subject_id`` for the patient, ``study_id`` for the record, ``ecg_time`` for
the date).

Record I/O is in :mod:`cape.readers.wfdb_io`, helpers shared with the other
readers in :mod:`cape.readers._common`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from cape.errors import CapeError
from cape.readers._common import (
    bad_cells,
    chunks,
    clean_id,
    inside,
    positive_int_option,
    safe_text,
    to_json,
)
from cape.readers.base import Reader, ReadTask
from cape.readers.wfdb_io import (
    OutsideSource,
    RecordTooLong,
    check_size,
    inspect_header,
    read_wfdb,
)
from cape.record import ECGRecord, Reason, Rejection, clean_age, normalise_sex

logger = logging.getLogger(__name__)

# CAPE field -> default column name. The simulator writes exactly these.
DEFAULT_COLUMNS: dict[str, str] = {
    "path": "path",
    "record_id": "record_id",
    "patient_id": "patient_id",
    "age": "age",
    "sex": "sex",
    "device": "device",
    "site": "site",
    "ethnicity": "ethnicity",
    "recording_date": "recording_date",
}
# Used only when the default column is absent and the user did not name one.
# MIMIC-IV-ECG's record_list.csv: subject_id, study_id, file_name, ecg_time, path.
FALLBACK_COLUMNS: dict[str, tuple[str, ...]] = {
    "patient_id": ("subject_id",),
    "record_id": ("study_id",),
    "recording_date": ("ecg_time",),
}
# Searched in this order when the option ``metadata`` is not given.
DEFAULT_METADATA_FILES = ("metadata.csv", "metadata.parquet", "record_list.csv")
MIN_WINDOW_SECONDS = 1.0
_OPTIONS = {"metadata", "columns", "window_seconds", "records_per_task", "check_orphans"}


# --------------------------------------------------------------------------- the reader


class WFDBFolderReader(Reader):
    """WFDB records listed in a metadata table (csv or parquet).

    Options:
        metadata: path of the table (absolute, or relative to the source);
            default: the first of ``metadata.csv``, ``metadata.parquet``,
            ``record_list.csv`` found in the source folder.
        columns: dict CAPE field -> table column, merged over
            :data:`DEFAULT_COLUMNS`. Fields: ``path``, ``record_id``,
            ``patient_id``, ``age``, ``sex``, ``device``, ``site``,
            ``ethnicity``, ``recording_date``.
        window_seconds: if set, each record is cut into consecutive,
            non-overlapping windows of this length, each yielded as its own
            ECG ``"<record_id>_w<k>"`` (k from 0); the trailing partial window
            is dropped; a record shorter than one window is rejected (too_short).
        records_per_task: table rows per task (default 250).
        check_orphans: report ``.hea`` files under the source that no table
            row lists (default True).

    Raises:
        CapeError: source or table missing, unknown option, a named column
            absent, or no path / patient id column.
    """

    format_name = "wfdb"

    def __init__(self, source: str | Path, cohort: str, **options: Any) -> None:
        super().__init__(source, cohort, **options)
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise CapeError(f"wfdb reader: unknown option(s) {unknown}; known: {sorted(_OPTIONS)}")
        if not self.source.is_dir():
            raise CapeError(f"wfdb reader: source {self.source} is not a folder")
        self.metadata_path = self._resolve_metadata(options.get("metadata"))
        self.columns = self._resolve_columns(options.get("columns") or {})
        window = options.get("window_seconds")
        self.window_seconds: float | None = None if window is None else float(window)
        if self.window_seconds is not None and not self.window_seconds >= MIN_WINDOW_SECONDS:
            raise CapeError(
                f"wfdb reader: --window-seconds (study option window_seconds) {window!r} "
                "must be >= "
                f"{MIN_WINDOW_SECONDS:g} (and the network needs 7 s windows)"
            )
        self.records_per_task = positive_int_option(
            "records_per_task", options.get("records_per_task", 250), "wfdb"
        )
        check = options.get("check_orphans", True)
        # Options may arrive as text from the command line: "false" must mean False.
        self.check_orphans = (
            check.strip().lower() not in {"0", "false", "no", "off"}
            if isinstance(check, str)
            else bool(check)
        )
        self._table: pd.DataFrame | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Workers reload the table lazily; pickling it into every task would be slow.
        state = self.__dict__.copy()
        state["_table"] = None
        return state

    # -------------------------------------------------------------- construction helpers

    def _resolve_metadata(self, option: Any) -> Path:
        if option is not None:
            path = Path(option)
            path = path if path.is_absolute() else self.source / path
            if not path.is_file():
                raise CapeError(f"wfdb reader: metadata table {path} not found")
            return path
        for name in DEFAULT_METADATA_FILES:
            if (self.source / name).is_file():
                return self.source / name
        raise CapeError(
            f"wfdb reader: no metadata table in {self.source} (looked for "
            f"{', '.join(DEFAULT_METADATA_FILES)}); pass --metadata PATH (study option metadata: PATH)"
        )

    def _table_columns(self) -> list[str]:
        if self.metadata_path.suffix.lower() in {".parquet", ".pq"}:
            import pyarrow.parquet as pq

            return list(pq.read_schema(self.metadata_path).names)
        try:
            return list(pd.read_csv(self.metadata_path, nrows=0, encoding_errors="replace").columns)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise CapeError(
                f"wfdb reader: metadata table {self.metadata_path} is not a csv: {error}"
            ) from None

    def _resolve_columns(self, user_columns: Mapping[str, str]) -> dict[str, str]:
        """CAPE field -> column present in the table (fields without a column are left out)."""
        unknown = sorted(set(user_columns) - set(DEFAULT_COLUMNS))
        if unknown:
            raise CapeError(
                f"wfdb reader: --map/--mapping (study option columns) has unknown field(s) "
                f"{unknown}; "
                f"known: {sorted(DEFAULT_COLUMNS)}"
            )
        present = set(self._table_columns())
        resolved: dict[str, str] = {}
        for field, default in DEFAULT_COLUMNS.items():
            if field in user_columns:
                column = str(user_columns[field])
                if column not in present:
                    raise CapeError(
                        f"wfdb reader: column {column!r} (for {field}) is not in "
                        f"{self.metadata_path}; columns are {sorted(present)}"
                    )
                resolved[field] = column
                continue
            for candidate in (default, *FALLBACK_COLUMNS.get(field, ())):
                if candidate in present:
                    resolved[field] = candidate
                    break
        for required in ("path", "patient_id"):
            if required not in resolved:
                candidates = (DEFAULT_COLUMNS[required], *FALLBACK_COLUMNS.get(required, ()))
                raise CapeError(
                    f"wfdb reader: {self.metadata_path} has no {required} column "
                    f"(looked for {', '.join(candidates)}); name it with "
                    f"--map {required}=YOUR_COLUMN (study option columns: "
                    f"{{{required}: YOUR_COLUMN}})"
                )
        return resolved

    # -------------------------------------------------------------- table

    def _load_table(self) -> pd.DataFrame:
        if self._table is None:
            if self.metadata_path.suffix.lower() in {".parquet", ".pq"}:
                table = pd.read_parquet(self.metadata_path)
            else:
                # All strings: ids keep leading zeros; numbers are parsed per field below.
                # Only empty cells are missing: an id spelled "NA" or "nan" is an id.
                # Undecodable bytes become U+FFFD; their rows are quarantined (bad_metadata).
                table = pd.read_csv(
                    self.metadata_path,
                    dtype=str,
                    keep_default_na=False,
                    na_values=[""],
                    encoding_errors="replace",
                )
            self._table = table.reset_index(drop=True)
        return self._table

    @staticmethod
    def _normalise_path(value: Any) -> str | None:
        text = clean_id(value)
        if text is None:
            return None
        text = text.replace("\\", "/").removeprefix("./")
        for suffix in (".hea", ".dat"):
            if text.lower().endswith(suffix):
                text = text[: -len(suffix)]
        return text

    def _listed_key(self, value: Any) -> str | None:
        """A table path as the orphan scan spells it: relative to the source, POSIX."""
        path = self._normalise_path(value)
        if path is None:
            return None
        candidate = Path(path)
        if candidate.is_absolute() and candidate.is_relative_to(self.source):
            return candidate.relative_to(self.source).as_posix()
        return candidate.as_posix()

    # -------------------------------------------------------------- Reader API

    def tasks(self) -> list[ReadTask]:
        """Chunks of table rows, then one task listing records on disk the table lacks."""
        table = self._load_table()
        tasks = [
            ReadTask(
                key=f"rows-{start:07d}-{stop - 1:07d}",
                payload=("rows", start, stop),
                n_items=stop - start,
            )
            for start, stop in chunks(len(table), self.records_per_task)
        ]
        if self.check_orphans:
            listed = {self._listed_key(p) for p in table[self.columns["path"]]}
            on_disk = sorted(
                header.relative_to(self.source).with_suffix("").as_posix()
                for header in self.source.rglob("*.hea")
            )
            orphans = [path for path in on_disk if path not in listed]
            if orphans:
                logger.warning(
                    "%d WFDB records under %s have no metadata row", len(orphans), self.source
                )
                for index, (start, stop) in enumerate(chunks(len(orphans), self.records_per_task)):
                    tasks.append(
                        ReadTask(
                            key=f"orphans-{index:05d}",
                            payload=("orphans", orphans[start:stop]),
                            n_items=stop - start,
                        )
                    )
        return tasks

    def read(self, task: ReadTask) -> Iterator[ECGRecord | Rejection]:
        kind = task.payload[0]
        if kind == "orphans":
            for path in task.payload[1]:
                detail = f"record {path} is on disk but has no row in {self.metadata_path.name}"
                header = str(self.source / f"{path}.hea")
                yield Rejection(self.cohort, header, Reason.BAD_METADATA, detail)
            return
        _, start, stop = task.payload
        rows = self._load_table().iloc[start:stop].to_dict("records")
        for offset, row in enumerate(rows):
            try:
                yield from self._read_row(start + offset, row)
            except Exception as error:  # one bad row never stops the task
                detail = f"row {start + offset}: {type(error).__name__}: {error}"
                yield Rejection(self.cohort, str(self.metadata_path), Reason.UNREADABLE, detail)

    # -------------------------------------------------------------- one row

    def _read_row(self, index: int, row: dict[str, Any]) -> Iterator[ECGRecord | Rejection]:
        columns, table_name = self.columns, self.metadata_path.name
        bad = bad_cells(row)
        if bad:
            detail = f"row {index} of {table_name} has undecodable bytes in {', '.join(bad)}"
            record_id = clean_id(row.get(columns.get("record_id", ""), None))
            yield Rejection(
                self.cohort,
                str(self.metadata_path),
                Reason.BAD_METADATA,
                detail,
                safe_text(record_id) if record_id else None,
            )
            return
        path = self._normalise_path(row.get(columns["path"]))
        if path is None:
            detail = f"row {index} of {table_name} has no record path"
            yield Rejection(self.cohort, str(self.metadata_path), Reason.BAD_METADATA, detail)
            return
        record_path = self.source / path
        source_file = str(record_path.with_name(record_path.name + ".hea"))
        record_id = clean_id(row.get(columns["record_id"])) if "record_id" in columns else None
        record_id = record_id or path
        patient_id = clean_id(row.get(columns["patient_id"]))
        reject = partial(
            Rejection, self.cohort, source_file, record_id=record_id, patient_id=patient_id
        )
        if patient_id is None:
            detail = f"row {index} of {table_name} has no {columns['patient_id']}"
            yield reject(Reason.MISSING_PATIENT_ID, detail)
            return
        if not inside(Path(source_file), self.source):
            detail = (
                f"row {index} of {table_name} lists {path}, which resolves outside {self.source}"
            )
            yield reject(Reason.OUTSIDE_SOURCE, detail)
            return
        if not Path(source_file).is_file():
            detail = f"row {index} of {table_name} lists {path} but {source_file} does not exist"
            yield reject(Reason.UNREADABLE, detail)
            return
        try:
            info = inspect_header(record_path)
            root = self.source
            if self.window_seconds is None:
                signal, sampling_rate_hz, lead_names, units = read_wfdb(record_path, root=root)
            else:  # names and rate from one sample; the windows are read below
                signal, sampling_rate_hz, lead_names, units = read_wfdb(record_path, 0, 1, root)
        except RecordTooLong as error:
            yield reject(Reason.TOO_LONG, str(error))
            return
        except OutsideSource as error:
            yield reject(Reason.OUTSIDE_SOURCE, str(error))
            return
        except Exception as error:  # one bad file must not stop the cohort
            yield reject(
                Reason.UNREADABLE, f"cannot read WFDB record: {type(error).__name__}: {error}"
            )
            return
        if sampling_rate_hz is None:
            yield reject(Reason.UNKNOWN_SAMPLING_RATE, "WFDB header has no sampling frequency")
            return
        record = partial(
            ECGRecord,
            patient_id=patient_id,
            cohort=self.cohort,
            sampling_rate_hz=sampling_rate_hz,
            lead_names=lead_names,
            units=units,
            source_file=source_file,
        )
        metadata = self._metadata(row)
        if self.window_seconds is None:
            yield record(record_id=record_id, signal=signal, metadata=metadata)
            return
        window = round(self.window_seconds * sampling_rate_hz)
        n_samples = info.n_samples or 0
        n_windows = n_samples // window if window >= 1 else 0
        if n_windows == 0:
            seconds = n_samples / sampling_rate_hz
            detail = (
                f"record of {seconds:.2f} s is shorter than window_seconds={self.window_seconds:g}"
            )
            yield reject(Reason.TOO_SHORT, detail)
            return
        try:
            check_size(info, window)
        except RecordTooLong as error:
            yield reject(Reason.TOO_LONG, f"one window: {error}")
            return
        # Consecutive, non-overlapping windows, each read on its own so that memory follows
        # the window and not the recording; the trailing partial window is dropped.
        for k in range(n_windows):
            window_signal, *_ = read_wfdb(record_path, k * window, (k + 1) * window, self.source)
            yield record(
                record_id=f"{record_id}_w{k}", signal=window_signal, metadata=dict(metadata)
            )

    def _metadata(self, row: dict[str, Any]) -> dict[str, Any]:
        columns = self.columns
        metadata: dict[str, Any] = {}
        if "age" in columns:
            metadata["age"] = clean_age(row.get(columns["age"]))
        if "sex" in columns:
            metadata["sex"] = normalise_sex(row.get(columns["sex"]))
        for field in ("device", "site", "ethnicity", "recording_date"):
            if field in columns:
                metadata[field] = clean_id(row.get(columns[field]))
        used = set(columns.values())
        extra = {key: value for key, value in row.items() if key not in used}
        if extra:
            metadata["extra"] = to_json(extra)
        return metadata
