"""Ingest: reader -> lead selection -> QC -> preprocessing -> cohort store.

Work is split by the reader's tasks; each task becomes one shard, written by
one worker process and committed atomically (see :mod:`cape.store`). A task
whose shard is already committed is skipped, so re-running ingest on the same
source is idempotent and a killed run resumes where it stopped. Every input
that does not become a stored ECG is quarantined with its reason.

Nothing a source says is trusted: any exception while reading, mapping leads,
checking or preprocessing one record becomes a quarantine row (the run goes
on); after preprocessing, plausibility checks (:func:`cape.qc.measure_beats`)
catch wrong sampling rates and gains; every stored signal carries a content
hash and an exact copy of an earlier one is quarantined (``duplicate_signal``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import cape
from cape.errors import CapeError
from cape.ingest.pool import run_pool
from cape.leads import (
    AmbiguousLeadsError,
    MissingLeadsError,
    select_store_leads,
    unit_scale_to_mv,
)
from cape.plausibility import check_plausibility, measure_beats
from cape.preprocessing import (
    PreprocessingConfig,
    plan_filters,
    preprocess,
)
from cape.qc import QCConfig, check_record
from cape.readers import get_reader
from cape.readers._common import safe_text
from cape.readers.base import Reader, ReadTask
from cape.record import ECGRecord, Reason, Rejection
from cape.store import (
    HEADER_FILE,
    QUARANTINE_FILE,
    SAMPLING_RATE_HZ,
    SLOT_SAMPLES,
    ShardWriter,
    committed_shards,
    new_header,
    read_header,
    rebuild_manifest,
    store_lock,
    write_json_atomic,
)
from cape.store.slot import fit_to_slot, to_int16_microvolts

logger = logging.getLogger(__name__)

_BATCH = 64  # records preprocessed together: vectorised filters, bounded memory


@dataclass
class IngestSummary:
    """Counts of one ingest run."""

    tasks_total: int = 0
    tasks_skipped: int = 0
    read: int = 0
    stored: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    duplicate_signals: int = 0

    def add(self, other: dict[str, Any]) -> None:
        self.read += other["read"]
        self.stored += other["stored"]
        self.quarantined.update(other["quarantined"])

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["quarantined"] = dict(self.quarantined)
        return out

    def format(self) -> str:
        lines = [
            f"tasks: {self.tasks_total} ({self.tasks_skipped} already stored, skipped)",
            f"read this run: {self.read}",
            f"stored this run: {self.stored}",
            f"quarantined this run: {sum(self.quarantined.values())}",
        ]
        lines += [f"  {reason}: {count}" for reason, count in sorted(self.quarantined.items())]
        if self.duplicates:
            lines.append(f"duplicate record ids in the store (quarantined): {self.duplicates}")
        if self.duplicate_signals:
            lines.append(f"duplicate signals in the store (quarantined): {self.duplicate_signals}")
        return "\n".join(lines)


# One documented character set for cohort names: they name shards and files, appear in
# reports and are compared exactly, so nothing is "sanitised" into a collision.
COHORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_cohort_name(cohort: str) -> str:
    """Return ``cohort`` if it is a valid cohort name.

    Valid: 1-64 characters of ``A-Z a-z 0-9 . _ -``, starting with a letter or
    digit (``site_a``, ``PTB-XL.500``).

    Raises:
        CapeError: otherwise, saying what is wrong and how a valid name looks.
    """
    if not isinstance(cohort, str) or not COHORT_NAME.match(cohort):
        raise CapeError(
            f"cohort name {cohort!r} is not allowed: use 1-64 characters of A-Z a-z 0-9 . _ - "
            "starting with a letter or digit (e.g. 'site_a')"
        )
    return cohort


def shard_name(cohort: str, task: ReadTask, source: str, options: dict[str, Any]) -> str:
    """File-system-safe shard name for a cohort's task.

    The name carries a digest of the source, the reader options and the task's
    payload, so a task is only "already stored" if the very same inputs were
    read before: a second source for the same cohort, other reader options, or
    a folder that gained files give new shards (and repeated record ids end up
    as ``duplicate_id`` in the quarantine, never silently skipped).
    """
    identity = json.dumps(
        [
            cohort,  # the exact name: two cohorts never share a shard
            source,
            {k: str(v) for k, v in sorted(options.items())},
            task.key,
            repr(task.payload),
        ]
    )
    digest = hashlib.sha1(identity.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{cohort}__{task.key}")
    return f"{safe[:180]}__{digest}"


def _text(value: Any) -> Any:
    """Strings (and lists of strings) made writable: undecodable bytes spelled ``\\xNN``."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def _rejection_row(rejection: Rejection) -> dict[str, Any]:
    return {
        "cohort": rejection.cohort,
        "source_file": _text(str(rejection.source_file)),
        "record_id": None if rejection.record_id is None else _text(str(rejection.record_id)),
        "patient_id": None if rejection.patient_id is None else _text(str(rejection.patient_id)),
        "reason": Reason(rejection.reason).value,
        "detail": _text(str(rejection.detail)),
    }


def _reject(record: ECGRecord, reason: Reason, detail: str) -> dict[str, Any]:
    return _rejection_row(
        Rejection(
            cohort=record.cohort,
            source_file=record.source_file,
            reason=reason,
            detail=detail,
            record_id=record.record_id,
            patient_id=record.patient_id,
        )
    )


def _metadata_row(record: ECGRecord) -> dict[str, Any]:
    row: dict[str, Any] = {
        "record_id": str(record.record_id),
        "patient_id": str(record.patient_id),
        "cohort": record.cohort,
        "source_sampling_rate_hz": float(record.sampling_rate_hz or math.nan),
        "source_file": record.source_file,
        "split": None,
    }
    for key, value in record.metadata.items():
        if isinstance(value, dict):
            value = json.dumps(value, sort_keys=True)
        elif isinstance(value, (tuple, set)):
            value = sorted(value)
        row[key] = value
    return {key: _text(value) for key, value in row.items()}


@dataclass
class _Prepared:
    record: ECGRecord
    signal_mv: np.ndarray  # (8, n) float64 at the source rate, valid part only


def _prepare(record: ECGRecord, qc: QCConfig) -> _Prepared | dict[str, Any]:
    """Validate one record and return its 8-lead valid span in mV, or a quarantine row."""
    if qc.is_placeholder(record.patient_id):
        return _reject(
            record,
            Reason.MISSING_PATIENT_ID,
            f"patient id {record.patient_id!r} is missing or a placeholder "
            "(QCConfig.placeholder_patient_ids)",
        )
    try:
        scale = unit_scale_to_mv(record.units)
    except ValueError as error:
        return _reject(record, Reason.BAD_METADATA, str(error))
    try:
        signal = select_store_leads(np.asarray(record.signal, dtype=np.float64), record.lead_names)
    except MissingLeadsError as error:
        return _reject(record, Reason.MISSING_LEADS, str(error))
    except AmbiguousLeadsError as error:
        return _reject(record, Reason.AMBIGUOUS_LEADS, str(error))
    except ValueError as error:
        return _reject(record, Reason.UNREADABLE, str(error))
    signal = signal * scale
    if record.valid_length is not None:
        signal = signal[:, record.valid_start : record.valid_start + record.valid_length]
    age = record.metadata.get("age")
    problem = check_record(signal, record.sampling_rate_hz, signal.shape[1], age, qc)
    if problem is not None:
        reason, detail = problem
        return _reject(record, reason, detail)
    # The source array (all leads, padding) is no longer needed: a batch holds only spans.
    record.signal = np.empty((0, 0))
    return _Prepared(record=record, signal_mv=np.ascontiguousarray(signal))


def _flush(
    batch: list[_Prepared],
    writer: ShardWriter,
    rejections: list[dict[str, Any]],
    mains_hz: float | None,
    config: PreprocessingConfig,
    qc: QCConfig,
) -> int:
    """Preprocess a batch (grouped by rate and length), check it and append it to the shard.

    A group that fails as a whole is retried record by record, so an exception
    quarantines the record that caused it (``processing_error``) and no other.
    """
    stored = 0
    groups: dict[tuple[float, int], list[_Prepared]] = {}
    for item in batch:
        key = (float(item.record.sampling_rate_hz or 0.0), item.signal_mv.shape[1])
        groups.setdefault(key, []).append(item)
    for (rate, _), items in groups.items():
        try:
            stored += _store_group(items, rate, writer, rejections, mains_hz, config, qc)
        except Exception:
            for item in items:
                try:
                    stored += _store_group([item], rate, writer, rejections, mains_hz, config, qc)
                except Exception as error:
                    logger.exception("record %s failed in preprocessing", item.record.record_id)
                    rejections.append(
                        _reject(
                            item.record,
                            Reason.PROCESSING_ERROR,
                            f"{type(error).__name__}: {error}",
                        )
                    )
    return stored


def _store_group(
    items: list[_Prepared],
    rate: float,
    writer: ShardWriter,
    rejections: list[dict[str, Any]],
    mains_hz: float | None,
    config: PreprocessingConfig,
    qc: QCConfig,
) -> int:
    """Preprocess records of one rate and length, run the plausibility checks, append."""
    stacked = np.stack([item.signal_mv for item in items])
    result = preprocess(stacked, rate, mains_hz, config)
    slots, valid = fit_to_slot(result.signals, result.valid_lengths, SLOT_SAMPLES)
    int16, clipped = to_int16_microvolts(slots)
    features = measure_beats(slots, valid, SAMPLING_RATE_HZ)
    outcomes: list[tuple[Reason, str] | dict[str, Any]] = []
    for k, item in enumerate(items):
        if clipped[k]:
            outcomes.append(
                (
                    Reason.SATURATED,
                    "after preprocessing the signal exceeds ±32.767 mV (int16 µV range)",
                )
            )
            continue
        problem = check_plausibility(features, k, qc)
        if problem is not None:
            outcomes.append(problem)
            continue
        row = _metadata_row(item.record)
        row["valid_length"] = int(valid[k])
        # Content hash of exactly what is stored: equal hashes = the same signal.
        row["signal_hash"] = hashlib.blake2b(int16[k].tobytes(), digest_size=16).hexdigest()
        outcomes.append(row)
    # Only now touch the shard: a failure above leaves nothing half-written.
    stored = 0
    for k, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
        if isinstance(outcome, dict):
            writer.append(int16[k], outcome)
            stored += 1
        else:
            rejections.append(_reject(item.record, *outcome))
    return stored


def ingest_task(
    reader: Reader,
    task: ReadTask,
    store_path: Path,
    name: str,
    mains_hz: float | None,
    config: PreprocessingConfig,
    qc: QCConfig,
) -> dict[str, Any]:
    """Read one task, write and commit its shard. Runs in a worker process.

    Never raises for what a source holds: a reader that fails mid-task leaves
    one ``unreadable`` row naming the task and the exception, and what was read
    before it is stored.
    """
    writer = ShardWriter(store_path, name)
    rejections: list[dict[str, Any]] = []
    batch: list[_Prepared] = []
    read = stored = 0
    try:
        items = iter(reader.read(task))
        while True:
            try:
                item = next(items)
            except StopIteration:
                break
            except Exception as error:  # the reader itself failed: the task's rest is lost
                logger.exception("task %s of %s failed", task.key, reader.source)
                detail = (
                    f"task {task.key} stopped after {read} inputs: {type(error).__name__}: {error}"
                )
                rejections.append(
                    _rejection_row(
                        Rejection(reader.cohort, str(reader.source), Reason.UNREADABLE, detail)
                    )
                )
                break
            read += 1
            if isinstance(item, Rejection):
                rejections.append(_rejection_row(item))
                continue
            try:
                prepared = _prepare(item, qc)
            except Exception as error:  # one bad record never stops the run
                logger.exception("record %s in %s failed", item.record_id, item.source_file)
                prepared = _reject(
                    item, Reason.PROCESSING_ERROR, f"{type(error).__name__}: {error}"
                )
            if isinstance(prepared, dict):
                rejections.append(prepared)
                continue
            batch.append(prepared)
            if len(batch) >= _BATCH:
                stored += _flush(batch, writer, rejections, mains_hz, config, qc)
                batch = []
        if batch:
            stored += _flush(batch, writer, rejections, mains_hz, config, qc)
        writer.commit(rejections)
    except BaseException:
        writer.abort()
        raise
    counts = Counter(str(r["reason"]) for r in rejections)
    return {"read": read, "stored": stored, "quarantined": dict(counts)}


def _recorded_sources(store_path: Path, cohort: str) -> set[str]:
    """Source files of a cohort that committed shards stored or quarantined."""
    done = committed_shards(store_path)
    sources: set[str] = set()
    for name in done:
        for suffix in (".parquet", ".quarantine.parquet"):
            part = store_path / "parts" / f"{name}{suffix}"
            if part.is_file():
                frame = pd.read_parquet(part, columns=["cohort", "source_file"])
                sources.update(frame.loc[frame["cohort"] == cohort, "source_file"].astype(str))
    return sources


def _count_duplicates(store_path: Path, reason: Reason = Reason.DUPLICATE_ID) -> int:
    """Duplicates (ids or signals) quarantined by :func:`cape.store.rebuild_manifest`."""
    quarantine = pd.read_parquet(store_path / QUARANTINE_FILE, columns=["reason"])
    return int((quarantine["reason"] == reason.value).sum())


def ingest(
    format_name: str,
    source: str | Path,
    cohort: str,
    out: str | Path,
    mains_hz: float | None,
    workers: int = 1,
    reader_options: dict[str, Any] | None = None,
    preprocessing: PreprocessingConfig | None = None,
    qc: QCConfig | None = None,
    progress: bool = True,
) -> IngestSummary:
    """Ingest one source into a store (created if needed).

    Args:
        format_name: ``ptbxl``, ``code15``, ``wfdb``, ``dicom`` or ``muse``.
        source: the dataset's folder (or file, for DICOM/MUSE).
        cohort: name of the cohort these ECGs belong to.
        out: store directory.
        mains_hz: the cohort's mains frequency (50 or 60) for the notch; None = no notch.
        workers: worker processes (one task at a time each).
        reader_options: passed to the reader (e.g. ``sampling_rate=100`` for PTB-XL).
        preprocessing, qc: parameters; recorded in the store header.

    Raises:
        CapeError: bad source layout, an invalid cohort name, or the cohort was
            ingested before with other preprocessing parameters.
    """
    validate_cohort_name(cohort)
    reader = get_reader(format_name, source, cohort, **(reader_options or {}))
    return ingest_reader(
        reader,
        out,
        mains_hz,
        workers=workers,
        preprocessing=preprocessing,
        qc=qc,
        progress=progress,
        format_name=format_name,
    )


def ingest_reader(
    reader: Reader,
    out: str | Path,
    mains_hz: float | None,
    workers: int = 1,
    preprocessing: PreprocessingConfig | None = None,
    qc: QCConfig | None = None,
    progress: bool = True,
    format_name: str | None = None,
) -> IngestSummary:
    """Ingest everything a constructed reader yields (see :func:`ingest`)."""
    config = preprocessing or PreprocessingConfig()
    qc = qc or QCConfig()
    store_path = Path(out)
    cohort = validate_cohort_name(reader.cohort)
    source = reader.source
    reader_options = reader.options
    format_name = format_name or reader.format_name
    with store_lock(store_path):
        header = read_header(store_path) if (store_path / HEADER_FILE).is_file() else new_header()
        entry = {
            "format": format_name,
            "mains_hz": mains_hz,
            "preprocessing": config.to_dict(),
            "qc": qc.to_dict(),
        }
        previous = header["cohorts"].get(cohort)
        if previous is not None:
            for key in ("mains_hz", "preprocessing", "qc"):
                before, now = previous.get(key), entry[key]
                if key == "qc" and isinstance(before, dict) and isinstance(now, dict):
                    # Checks added by a later CAPE are not a change of parameters.
                    now = {k: v for k, v in now.items() if k in before}
                if before != now:
                    raise CapeError(
                        f"cohort {cohort!r} is already in {store_path} with {key}="
                        f"{before!r}; this run asks for {now!r}. "
                        "Use another cohort name or another store."
                    )
        sources = list(previous.get("sources", [])) if previous else []
        source_str = str(Path(source).resolve())
        if source_str not in sources:
            sources.append(source_str)
        header["cohorts"][cohort] = {
            **(previous or {}),
            **entry,
            "sources": sources,
            "reader_options": {k: str(v) for k, v in (reader_options or {}).items()},
            "cape_version": cape.__version__,
            "ingested_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        write_json_atomic(store_path / HEADER_FILE, header)
        if not (store_path / "manifest.parquet").is_file():
            # A store is readable (empty) from its first moment: a crash before the first
            # commit leaves a store that `cape describe` opens and a rerun completes.
            rebuild_manifest(store_path)

        tasks = reader.tasks()
        done = committed_shards(store_path)
        summary = IngestSummary(tasks_total=len(tasks))
        source_key = str(Path(source).resolve())
        todo = [(t, shard_name(cohort, t, source_key, dict(reader_options))) for t in tasks]
        pending = [(t, n) for t, n in todo if n not in done]
        summary.tasks_skipped = len(todo) - len(pending)
        if pending and done and type(reader).without is not Reader.without:
            # A task re-run because its group changed reads only inputs not yet recorded.
            recorded = _recorded_sources(store_path, cohort)
            pending = [(reader.without(t, recorded), n) for t, n in pending]
        total_items = sum(t.n_items for t, _ in pending)
        bar = tqdm(total=total_items, unit="ECG", desc=f"ingest {cohort}", disable=not progress)
        try:
            if workers <= 1:
                for task, name in pending:
                    result = ingest_task(reader, task, store_path, name, mains_hz, config, qc)
                    summary.add(result)
                    bar.update(task.n_items)
            else:
                run_pool(
                    ingest_task,
                    (reader, store_path, mains_hz, config, qc),
                    pending,
                    store_path,
                    workers,
                    summary,
                    bar,
                    on_killed=lambda t, n: _quarantine_killer(reader, store_path, t, n),
                )
        finally:
            bar.close()
        manifest = rebuild_manifest(store_path)
        summary.duplicates = _count_duplicates(store_path)
        summary.duplicate_signals = _count_duplicates(store_path, Reason.DUPLICATE_SIGNAL)
        rows = manifest[manifest["cohort"] == cohort]
        header["cohorts"][cohort]["n_stored"] = len(rows)
        # What the filters actually did at each source rate (e.g. no 100 Hz low-pass at 100 Hz).
        plans = {}
        for rate in sorted(rows["source_sampling_rate_hz"].dropna().unique()):
            plan = plan_filters(float(rate), mains_hz, config)
            plans[f"{float(rate):g}"] = plan.to_dict()
            for note in plan.notes:
                logger.info("%s at %g Hz: %s", cohort, rate, note)
        header["cohorts"][cohort]["filter_plans"] = plans
        write_json_atomic(store_path / HEADER_FILE, header)
    return summary


def _quarantine_killer(reader: Reader, store_path: Path, task: ReadTask, name: str) -> None:
    """Commit a task that killed its worker twice as one ``unreadable`` row."""
    detail = f"task {task.key} killed the worker reading it (twice); not read"
    row = Rejection(reader.cohort, str(reader.source), Reason.UNREADABLE, detail)
    ShardWriter(store_path, name).commit([_rejection_row(row)])
