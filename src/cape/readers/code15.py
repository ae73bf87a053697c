"""CODE-15% reader (Ribeiro et al.; Zenodo record 4916206).

Layout::

    SOURCE/
      exams.csv            exam_id, age, is_male, nn_predicted_age, 1dAVb, RBBB, LBBB, SB,
                           ST, AF, patient_id, death, timey, normal_ecg, trace_file
      exams_part0.hdf5     datasets ``tracings`` (N, 4096, 12) float32 at 400 Hz and
      exams_part1.hdf5     ``exam_id`` (N,), in the same row order
      ...

The csv is *not* in HDF5 row order, so every HDF5 row is matched to its csv
row through the HDF5 ``exam_id`` dataset. The last row of each part is all
zeros with exam_id 0 (padding) and is skipped.

Recordings are 7 s (2800 samples) or 10 s (4000 samples) zero-padded
*centred* to 4096 samples. :func:`detect_valid_window` finds the real signal:
the first and last sample where any lead is non-zero, then the smallest
standard centred window (2800, then 4000 samples) that contains them, else the
non-zero extent itself. Snapping to the
standard window keeps a recording whose own first or last samples happen to
be exactly zero on every lead at its true length.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from cape.errors import CapeError
from cape.readers._common import bad_cells, clean_id, positive_int_option, to_json
from cape.readers.base import Reader, ReadTask
from cape.readers.wfdb_io import MAX_RECORD_VALUES
from cape.record import ECGRecord, Reason, Rejection, clean_age

logger = logging.getLogger(__name__)

EXAMS_FILE = "exams.csv"
SAMPLING_RATE_HZ = 400.0
LEAD_NAMES = ["DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
# Unit: the dataset's README says the tracings are "at the scale 1e-4V: so if the signal is
# in V it should be multiplied by 1000" (github.com/antonior92/ecg-age-prediction, README,
# "Model"); the two halves disagree, but the instruction and the data (QRS ~1 unit) mean
# millivolts, which is also how the PhysioNet Challenge 2025 prepare_code15_data.py
# converts these files to WFDB (units "mV", gain 1000).
UNITS = "mV"
# Centred lengths the dataset uses: 7 s and 10 s at 400 Hz.
STANDARD_LENGTHS = (2800, 4000)
DIAGNOSIS_COLUMNS = ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")
EXTRA_COLUMNS = ("nn_predicted_age", "death", "timey", "normal_ecg", "trace_file")
_PART_PATTERN = re.compile(r"^exams_part(\d+)\.hdf5$")
_READ_BLOCK = 64  # HDF5 rows per read: 64 x 4096 x 12 float32 = 12.6 MB
_OPTIONS = {"rows_per_task", "parts"}


def detect_valid_window(tracing: np.ndarray) -> tuple[int, int]:
    """Where the real signal lies in a centred, zero-padded CODE-15% tracing.

    Args:
        tracing: ``(n_samples, n_leads)`` array (the HDF5 row layout).

    Returns:
        ``(valid_start, valid_length)`` in samples; ``(0, 0)`` if all zero.
        The extent of non-zero samples (any lead) is snapped to the smallest
        standard centred window of :data:`STANDARD_LENGTHS` that contains it;
        if none does (the padding is not centred), the extent itself.
    """
    n_samples = tracing.shape[0]
    nonzero = np.flatnonzero(np.any(tracing != 0, axis=1))
    if nonzero.size == 0:
        return 0, 0
    first, last = int(nonzero[0]), int(nonzero[-1])
    for length in STANDARD_LENGTHS:
        if length > n_samples:
            continue
        start = (n_samples - length) // 2
        if start <= first and last < start + length:
            return start, length
    return first, last - first + 1


def _part_index(path: Path) -> int:
    match = _PART_PATTERN.match(path.name)
    return int(match.group(1)) if match else -1


def _is_true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "1.0", "yes"}
    try:
        return bool(value) and not (isinstance(value, float) and math.isnan(value))
    except (TypeError, ValueError):
        return False


class Code15Reader(Reader):
    """Reads a CODE-15% folder.

    Options:
        rows_per_task: HDF5 rows per task (default 500).
        parts: part numbers to read (e.g. ``[0, 1]``); default: every
            ``exams_part*.hdf5`` present. With ``parts`` set, only csv exams
            whose ``trace_file`` names a selected part are expected.

    Raises:
        CapeError: source, ``exams.csv`` or the parts missing, a required
            column absent, or a bad option.
    """

    format_name = "code15"

    def __init__(self, source: str | Path, cohort: str, **options: Any) -> None:
        super().__init__(source, cohort, **options)
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise CapeError(
                f"code15 reader: unknown option(s) {unknown}; known: {sorted(_OPTIONS)}"
            )
        self.rows_per_task = positive_int_option(
            "rows_per_task", options.get("rows_per_task", 500), "code15"
        )
        if not self.source.is_dir():
            raise CapeError(f"code15 reader: source {self.source} is not a folder")
        self.exams_path = self.source / EXAMS_FILE
        if not self.exams_path.is_file():
            raise CapeError(
                f"code15 reader: {self.exams_path} not found; is {self.source} a CODE-15% folder?"
            )
        columns = set(pd.read_csv(self.exams_path, nrows=0, encoding_errors="replace").columns)
        missing = [c for c in ("exam_id", "patient_id") if c not in columns]
        if missing:
            raise CapeError(f"code15 reader: {self.exams_path} lacks column(s) {missing}")
        self.part_paths = self._resolve_parts(options.get("parts"))
        self._exams: pd.DataFrame | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Workers reload exams.csv lazily instead of receiving it pickled with every task.
        state = self.__dict__.copy()
        state["_exams"] = None
        return state

    def _resolve_parts(self, parts: Any) -> list[Path]:
        found = sorted(
            (p for p in self.source.glob("exams_part*.hdf5") if _part_index(p) >= 0),
            key=_part_index,
        )
        if parts is None:
            if not found:
                raise CapeError(f"code15 reader: no exams_part*.hdf5 files in {self.source}")
            return found
        selected = []
        for part in parts if isinstance(parts, list | tuple) else [parts]:
            name = f"exams_part{int(part)}.hdf5" if str(part).isdigit() else str(part)
            path = self.source / name
            if not path.is_file():
                raise CapeError(f"code15 reader: part {path} (option parts) not found")
            selected.append(path)
        return selected

    def _load_exams(self) -> pd.DataFrame:
        """exams.csv indexed by exam_id (first row kept when an id repeats)."""
        if self._exams is None:
            # Undecodable bytes become U+FFFD; their rows are quarantined (bad_metadata).
            exams = pd.read_csv(self.exams_path, encoding_errors="replace")
            exam_ids = pd.to_numeric(exams["exam_id"], errors="coerce")
            bad = int(exam_ids.isna().sum())
            if bad:
                logger.warning(
                    "%s: %d rows without a numeric exam_id are ignored", self.exams_path, bad
                )
            exams = exams[exam_ids.notna()].set_index(exam_ids[exam_ids.notna()].astype(np.int64))
            duplicated = exams.index.duplicated()
            if duplicated.any():
                logger.warning(
                    "%s: %d repeated exam_ids; the first row of each is used",
                    self.exams_path,
                    int(duplicated.sum()),
                )
                exams = exams[~duplicated]
            self._exams = exams
        return self._exams

    # -------------------------------------------------------------- Reader API

    def tasks(self) -> list[ReadTask]:
        """Row ranges of each part, then tasks for csv exams that no part holds."""
        tasks: list[ReadTask] = []
        in_parts: set[int] = set()
        for part in self.part_paths:
            try:
                with h5py.File(part, "r") as handle:
                    exam_ids = np.asarray(handle["exam_id"][:], dtype=np.int64)
                    shape = handle["tracings"].shape
            except Exception as error:
                logger.error("cannot open %s: %s", part, error)
                tasks.append(
                    ReadTask(
                        key=f"{part.stem}-unreadable",
                        payload=("bad_part", part.name, f"{type(error).__name__}: {error}"),
                        n_items=1,
                    )
                )
                continue
            # A dataset's shape is a claim too: a chunked dataset can declare rows of
            # 10^8 samples in a small file. Rows must be what CODE-15% has (at most the
            # per-record cap of values).
            if (
                len(shape) == 3
                and shape[0] == exam_ids.size
                and shape[1] * shape[2] > (MAX_RECORD_VALUES)
            ):
                tasks.append(
                    ReadTask(
                        key=f"{part.stem}-unreadable",
                        payload=(
                            "bad_part",
                            part.name,
                            f"tracings rows of {shape[1]} x {shape[2]} values exceed the cap "
                            f"of {MAX_RECORD_VALUES} per record",
                        ),
                        n_items=1,
                    )
                )
                continue
            if len(shape) != 3 or shape[0] != exam_ids.size:
                tasks.append(
                    ReadTask(
                        key=f"{part.stem}-unreadable",
                        payload=(
                            "bad_part",
                            part.name,
                            f"tracings of shape {shape} do not match {exam_ids.size} exam_ids",
                        ),
                        n_items=1,
                    )
                )
                continue
            in_parts.update(exam_ids.tolist())
            for start in range(0, exam_ids.size, self.rows_per_task):
                stop = min(start + self.rows_per_task, exam_ids.size)
                tasks.append(
                    ReadTask(
                        key=f"{part.stem}-rows-{start:06d}-{stop - 1:06d}",
                        payload=("rows", part.name, start, stop),
                        n_items=int(np.count_nonzero(exam_ids[start:stop])),
                    )
                )
        exams = self._load_exams()
        expected = exams
        if self.options.get("parts") is not None and "trace_file" in exams.columns:
            names = {p.name for p in self.part_paths}
            expected = exams[exams["trace_file"].astype(str).isin(names)]
        missing = [int(i) for i in expected.index if int(i) not in in_parts]
        for start in range(0, len(missing), self.rows_per_task):
            chunk = missing[start : start + self.rows_per_task]
            tasks.append(
                ReadTask(
                    key=f"missing-{start // self.rows_per_task:05d}",
                    payload=("missing", chunk),
                    n_items=len(chunk),
                )
            )
        return tasks

    def read(self, task: ReadTask) -> Iterator[ECGRecord | Rejection]:
        kind = task.payload[0]
        if kind == "bad_part":
            _, name, detail = task.payload
            yield Rejection(
                self.cohort,
                str(self.source / name),
                Reason.UNREADABLE,
                f"cannot read HDF5 part: {detail}",
            )
        elif kind == "missing":
            yield from self._missing(task.payload[1])
        else:
            _, name, start, stop = task.payload
            yield from self._read_rows(self.source / name, start, stop)

    # -------------------------------------------------------------- work

    def _missing(self, exam_ids: list[int]) -> Iterator[Rejection]:
        exams = self._load_exams()
        for exam_id in exam_ids:
            row = exams.loc[exam_id]
            trace_file = clean_id(row.get("trace_file"))
            source_file = self.source / trace_file if trace_file else self.exams_path
            yield Rejection(
                self.cohort,
                str(source_file),
                Reason.UNREADABLE,
                f"exam_id {exam_id} is in {EXAMS_FILE} (trace_file={trace_file}) "
                "but no exams_part*.hdf5 holds it",
                str(exam_id),
                clean_id(row.get("patient_id")),
            )

    def _read_rows(self, part: Path, start: int, stop: int) -> Iterator[ECGRecord | Rejection]:
        exams = self._load_exams()
        with h5py.File(part, "r") as handle:
            exam_ids = np.asarray(handle["exam_id"][start:stop], dtype=np.int64)
            tracings = handle["tracings"]
            for block_start in range(start, stop, _READ_BLOCK):
                block_stop = min(block_start + _READ_BLOCK, stop)
                # exam_id 0 marks the all-zero padding row that ends every part.
                rows = [
                    (row, int(exam_ids[row - start]))
                    for row in range(block_start, block_stop)
                    if exam_ids[row - start] != 0
                ]
                if not rows:
                    continue
                try:
                    block = np.asarray(tracings[block_start:block_stop])
                except Exception:  # a damaged chunk: salvage the rows one by one
                    block = None
                for row, exam_id in rows:
                    try:
                        tracing = block[row - block_start] if block is not None else tracings[row]
                    except Exception as error:
                        detail = f"cannot read row {row} of {part.name}: {type(error).__name__}"
                        yield Rejection(
                            self.cohort, str(part), Reason.UNREADABLE, detail, str(exam_id)
                        )
                        continue
                    try:
                        yield self._record(part, row, exam_id, np.asarray(tracing), exams)
                    except Exception as error:  # one bad row never stops the task
                        detail = f"row {row} of {part.name}: {type(error).__name__}: {error}"
                        yield Rejection(
                            self.cohort, str(part), Reason.UNREADABLE, detail, str(exam_id)
                        )

    def _record(
        self, part: Path, row: int, exam_id: int, tracing: np.ndarray, exams: pd.DataFrame
    ) -> ECGRecord | Rejection:
        record_id = str(exam_id)
        if exam_id not in exams.index:
            return Rejection(
                self.cohort,
                str(part),
                Reason.BAD_METADATA,
                f"row {row} of {part.name} has exam_id {exam_id}, which is not in {EXAMS_FILE}",
                record_id,
            )
        meta = exams.loc[exam_id]
        bad = bad_cells(meta.to_dict())
        if bad:
            return Rejection(
                self.cohort,
                str(self.exams_path),
                Reason.BAD_METADATA,
                f"exam_id {exam_id}: undecodable bytes in {', '.join(bad)} of {EXAMS_FILE}",
                record_id,
            )
        patient_id = clean_id(meta.get("patient_id"))
        if patient_id is None:
            return Rejection(
                self.cohort,
                str(part),
                Reason.MISSING_PATIENT_ID,
                f"exam_id {exam_id} has no patient_id in {EXAMS_FILE}",
                record_id,
            )
        valid_start, valid_length = detect_valid_window(tracing)
        if valid_length == 0:
            return Rejection(
                self.cohort,
                str(part),
                Reason.FLAT_LEAD,
                f"row {row} of {part.name} (exam_id {exam_id}) is all zeros",
                record_id,
                patient_id,
            )
        is_male = meta.get("is_male")
        sex = None if clean_id(is_male) is None else ("M" if _is_true(is_male) else "F")
        diagnoses = [c for c in DIAGNOSIS_COLUMNS if c in meta.index and _is_true(meta[c])]
        extra = {c: meta[c] for c in EXTRA_COLUMNS if c in meta.index}
        extra["hdf5_row"] = row
        metadata = {
            "age": clean_age(meta.get("age")),
            "sex": sex,
            "diagnoses": diagnoses,
            "extra": to_json(extra),
        }
        return ECGRecord(
            record_id,
            patient_id,
            self.cohort,
            np.ascontiguousarray(tracing.T),
            SAMPLING_RATE_HZ,
            list(LEAD_NAMES),
            UNITS,
            str(part),
            valid_length=valid_length,
            valid_start=valid_start,
            metadata=metadata,
        )
