"""PTB-XL reader (Wagner et al., Sci Data 2020; PhysioNet ``ptb-xl`` 1.0.x).

Layout::

    SOURCE/
      ptbxl_database.csv    ecg_id, patient_id, age, sex, site, device, recording_date,
                            scp_codes, strat_fold, filename_lr, filename_hr, ...
      scp_statements.csv    first (unnamed) column = SCP code; diagnostic,
                            diagnostic_class, diagnostic_subclass, ...
      records100/00000/00001_lr.{hea,dat}
      records500/00000/00001_hr.{hea,dat}

Labels follow the PTB-XL benchmark (Strodthoff et al. 2020): a record's
superclasses and subclasses are the ``diagnostic_class`` / ``diagnostic_subclass``
of every ``scp_codes`` entry whose ``scp_statements`` row has ``diagnostic == 1``.
The benchmark ignores the likelihood; so does the default ``min_likelihood=0``
(a code listed with likelihood 0 is listed, not absent). Raise
``min_likelihood`` (e.g. 50 or 100) to keep only more certain statements.
"""

from __future__ import annotations

import ast
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from cape.errors import CapeError
from cape.readers._common import (
    bad_cells,
    clean_id,
    inside,
    positive_int_option,
    safe_text,
    to_json,
)
from cape.readers.base import Reader, ReadTask
from cape.readers.wfdb_io import OutsideSource, RecordTooLong, read_wfdb
from cape.record import ECGRecord, Reason, Rejection, clean_age

logger = logging.getLogger(__name__)

DATABASE_FILE = "ptbxl_database.csv"
STATEMENTS_FILE = "scp_statements.csv"
# PTB-XL codes ages >= 90 as 300 (de-identification, PTB-XL paper, "Patient data").
TOPCODED_AGE_VALUE = 300.0
TOPCODED_AGE = 90.0
_FILENAME_COLUMN = {500: "filename_hr", 100: "filename_lr"}
_RECORDS_FOLDER = {500: "records500", 100: "records100"}
_REQUIRED_COLUMNS = ("ecg_id", "patient_id", "scp_codes")
_STATEMENT_COLUMNS = ("diagnostic", "diagnostic_class", "diagnostic_subclass")
# Columns mapped to CAPE fields; all others (except the file names) go to ``extra``.
_MAPPED = {
    "ecg_id",
    "patient_id",
    "age",
    "sex",
    "device",
    "site",
    "recording_date",
    "scp_codes",
    "strat_fold",
    "filename_lr",
    "filename_hr",
}
_OPTIONS = {"sampling_rate", "min_likelihood", "records_per_task"}


class PTBXLReader(Reader):
    """Reads a PTB-XL tree.

    Options:
        sampling_rate: 500 (default, ``filename_hr``) or 100 (``filename_lr``).
        min_likelihood: an SCP code counts towards superclasses/subclasses when
            its likelihood is >= this (default 0: every listed code counts).
        records_per_task: database rows per task (default 250).

    Raises:
        CapeError: source, ``ptbxl_database.csv`` or ``scp_statements.csv``
            missing, a required column absent, or a bad option.
    """

    format_name = "ptbxl"

    def __init__(self, source: str | Path, cohort: str, **options: Any) -> None:
        super().__init__(source, cohort, **options)
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise CapeError(f"ptbxl reader: unknown option(s) {unknown}; known: {sorted(_OPTIONS)}")
        try:
            self.sampling_rate = int(options.get("sampling_rate", 500))
        except (TypeError, ValueError):
            self.sampling_rate = -1
        if self.sampling_rate not in _FILENAME_COLUMN:
            raise CapeError(
                f"ptbxl reader: --sampling-rate (study option sampling_rate) "
                f"{options.get('sampling_rate')!r} must be 500 or 100"
            )
        try:
            self.min_likelihood = float(options.get("min_likelihood", 0.0))
        except (TypeError, ValueError):
            self.min_likelihood = math.nan
        if not self.min_likelihood >= 0:
            raise CapeError(
                f"ptbxl reader: option min_likelihood={options.get('min_likelihood')!r} "
                "must be a number >= 0"
            )
        self.records_per_task = positive_int_option(
            "records_per_task", options.get("records_per_task", 250), "ptbxl"
        )
        if not self.source.is_dir():
            raise CapeError(f"ptbxl reader: source {self.source} is not a folder")
        self.database_path = self.source / DATABASE_FILE
        self.statements_path = self.source / STATEMENTS_FILE
        for path in (self.database_path, self.statements_path):
            if not path.is_file():
                raise CapeError(
                    f"ptbxl reader: {path} not found; is {self.source} a PTB-XL folder?"
                )
        records_folder = self.source / _RECORDS_FOLDER[self.sampling_rate]
        if not records_folder.is_dir():
            other = 100 if self.sampling_rate == 500 else 500
            raise CapeError(
                f"ptbxl reader: {records_folder} not found; for the "
                f"{_RECORDS_FOLDER[other]} records pass --sampling-rate {other} (study option "
                f"sampling_rate: {other})"
            )
        self.filename_column = _FILENAME_COLUMN[self.sampling_rate]
        columns = set(pd.read_csv(self.database_path, nrows=0, encoding_errors="replace").columns)
        missing = [c for c in (*_REQUIRED_COLUMNS, self.filename_column) if c not in columns]
        if missing:
            raise CapeError(f"ptbxl reader: {self.database_path} lacks column(s) {missing}")
        columns = set(pd.read_csv(self.statements_path, nrows=0).columns)
        missing = [c for c in _STATEMENT_COLUMNS if c not in columns]
        if missing:
            raise CapeError(f"ptbxl reader: {self.statements_path} lacks column(s) {missing}")
        self._database: pd.DataFrame | None = None
        self._labels: dict[str, tuple[str | None, str | None]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Workers reload the tables lazily instead of receiving them pickled.
        state = self.__dict__.copy()
        state["_database"] = None
        state["_labels"] = None
        return state

    # -------------------------------------------------------------- tables

    def _load_database(self) -> pd.DataFrame:
        if self._database is None:
            text_columns = ("scp_codes", "filename_lr", "filename_hr", "recording_date", "device")
            # Undecodable bytes become U+FFFD; their rows are quarantined (bad_metadata).
            database = pd.read_csv(
                self.database_path,
                dtype={c: str for c in text_columns},
                encoding_errors="replace",
            )
            self._database = database.reset_index(drop=True)
        return self._database

    def _load_labels(self) -> dict[str, tuple[str | None, str | None]]:
        """SCP code -> (diagnostic_class, diagnostic_subclass) for diagnostic statements."""
        if self._labels is None:
            statements = pd.read_csv(self.statements_path, index_col=0)
            diagnostic = statements[pd.to_numeric(statements["diagnostic"], errors="coerce") == 1]
            self._labels = {
                str(code): (clean_id(row["diagnostic_class"]), clean_id(row["diagnostic_subclass"]))
                for code, row in diagnostic.iterrows()
            }
        return self._labels

    # -------------------------------------------------------------- Reader API

    def tasks(self) -> list[ReadTask]:
        """Consecutive chunks of ``ptbxl_database.csv`` rows, in file order."""
        n_rows = len(self._load_database())
        return [
            ReadTask(
                key=f"rows-{start:06d}-{min(start + self.records_per_task, n_rows) - 1:06d}",
                payload=(start, min(start + self.records_per_task, n_rows)),
                n_items=min(self.records_per_task, n_rows - start),
            )
            for start in range(0, n_rows, self.records_per_task)
        ]

    def read(self, task: ReadTask) -> Iterator[ECGRecord | Rejection]:
        start, stop = task.payload
        rows = self._load_database().iloc[start:stop].to_dict("records")
        labels = self._load_labels()
        for offset, row in enumerate(rows):
            try:
                yield self._read_row(start + offset, row, labels)
            except Exception as error:  # one bad row never stops the task
                detail = f"row {start + offset}: {type(error).__name__}: {error}"
                yield Rejection(self.cohort, str(self.database_path), Reason.UNREADABLE, detail)

    # -------------------------------------------------------------- one row

    def _read_row(
        self, index: int, row: dict[str, Any], labels: dict[str, tuple[str | None, str | None]]
    ) -> ECGRecord | Rejection:
        database = str(self.database_path)
        bad = bad_cells(row)
        if bad:
            ecg_id = clean_id(row.get("ecg_id"))
            return Rejection(
                self.cohort,
                database,
                Reason.BAD_METADATA,
                f"row {index} of {DATABASE_FILE} has undecodable bytes in {', '.join(bad)}",
                safe_text(ecg_id) if ecg_id else None,
            )
        record_id = clean_id(row.get("ecg_id"))
        if record_id is None:
            return Rejection(
                self.cohort,
                database,
                Reason.BAD_METADATA,
                f"row {index} of {DATABASE_FILE} has no ecg_id",
            )
        patient_id = clean_id(row.get("patient_id"))
        if patient_id is None:
            return Rejection(
                self.cohort,
                database,
                Reason.MISSING_PATIENT_ID,
                f"ecg_id {record_id} has no patient_id",
                record_id,
            )
        try:
            scp_codes = parse_scp_codes(row.get("scp_codes"))
        except ValueError as error:
            return Rejection(
                self.cohort,
                database,
                Reason.BAD_METADATA,
                f"ecg_id {record_id}: {error}",
                record_id,
                patient_id,
            )
        filename = clean_id(row.get(self.filename_column))
        if filename is None:
            return Rejection(
                self.cohort,
                database,
                Reason.BAD_METADATA,
                f"ecg_id {record_id} has no {self.filename_column}",
                record_id,
                patient_id,
            )
        record_path = self.source / filename
        source_file = str(record_path.with_name(record_path.name + ".hea"))
        if not inside(Path(source_file), self.source):
            return Rejection(
                self.cohort,
                source_file,
                Reason.OUTSIDE_SOURCE,
                f"ecg_id {record_id}: {filename} resolves outside {self.source}",
                record_id,
                patient_id,
            )
        try:
            signal, sampling_rate_hz, lead_names, units = read_wfdb(record_path, root=self.source)
        except RecordTooLong as error:
            return Rejection(
                self.cohort, source_file, Reason.TOO_LONG, str(error), record_id, patient_id
            )
        except OutsideSource as error:
            return Rejection(
                self.cohort, source_file, Reason.OUTSIDE_SOURCE, str(error), record_id, patient_id
            )
        except Exception as error:  # one bad file must not stop the cohort
            return Rejection(
                self.cohort,
                source_file,
                Reason.UNREADABLE,
                f"cannot read WFDB record: {type(error).__name__}: {error}",
                record_id,
                patient_id,
            )
        if sampling_rate_hz is None:
            # PTB-XL documents the rate by folder (records500 / records100).
            sampling_rate_hz = float(self.sampling_rate)
        return ECGRecord(
            record_id,
            patient_id,
            self.cohort,
            signal,
            sampling_rate_hz,
            lead_names,
            units,
            source_file,
            metadata=self._metadata(row, scp_codes, labels),
        )

    def _metadata(
        self,
        row: dict[str, Any],
        scp_codes: dict[str, float],
        labels: dict[str, tuple[str | None, str | None]],
    ) -> dict[str, Any]:
        age = clean_age(row.get("age"))
        topcoded = age == TOPCODED_AGE_VALUE
        sex_code = clean_age(row.get("sex"))  # PTB-XL: 0 = male, 1 = female
        sex = "M" if sex_code == 0 else "F" if sex_code == 1 else None
        superclasses: set[str] = set()
        subclasses: set[str] = set()
        for code, likelihood in scp_codes.items():
            if code in labels and likelihood >= self.min_likelihood:
                superclass, subclass = labels[code]
                if superclass:
                    superclasses.add(superclass)
                if subclass:
                    subclasses.add(subclass)
        fold = clean_age(row.get("strat_fold"))
        extra = {k: v for k, v in row.items() if k not in _MAPPED}
        return {
            "age": TOPCODED_AGE if topcoded else age,
            "age_topcoded": bool(topcoded),
            "sex": sex,
            "device": clean_id(row.get("device")),
            "site": clean_id(row.get("site")),
            "recording_date": clean_id(row.get("recording_date")),
            "diagnoses": sorted(scp_codes),
            "superclasses": sorted(superclasses),
            "subclasses": sorted(subclasses),
            "scp_codes": json.dumps(scp_codes, sort_keys=True),
            "strat_fold": None if math.isnan(fold) else int(fold),
            "extra": to_json(extra),
        }


def parse_scp_codes(text: Any) -> dict[str, float]:
    """Parse PTB-XL's ``scp_codes`` cell, a Python dict literal like ``"{'NORM': 100.0}"``.

    Raises:
        ValueError: not a dict of code -> number.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("scp_codes is empty")
    try:
        # literal_eval, not eval: the cell is data, never code.
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"scp_codes {text[:80]!r} is not a dict literal") from None
    if not isinstance(value, dict):
        raise ValueError(f"scp_codes {text[:80]!r} is not a dict")
    try:
        return {str(code): float(likelihood) for code, likelihood in value.items()}
    except (TypeError, ValueError):
        raise ValueError(f"scp_codes {text[:80]!r} has a non-numeric likelihood") from None
