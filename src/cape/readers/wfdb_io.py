"""Reading WFDB records: a fast path for one-file format-16 records, ``wfdb`` for the rest.

``wfdb.rdrecord`` spent ~45 ms per PTB-XL-like record against ~2 ms for this
module's reader (same values; ``python benchmarks/bench_wfdb.py``, figures in
docs/benchmarks.md), most of it parsing the header through pandas indexing.
PTB-XL and MIMIC-IV-ECG store every record as one format-16 file, which takes
a few lines of numpy to read. This module parses the header itself and reads
such records directly; anything else (other formats, multi-file or
multi-segment records, skew, byte offsets) returns ``None`` and the caller
falls back to ``wfdb``. Tests check the fast path against ``wfdb.rdrecord``
on files written by ``wfdb.wrsamp``.

Header grammar (PhysioNet's ``header(5)``)::

    record line:  NAME[/SEGMENTS] NSIG [FS[/COUNTER[(BASE)]] [NSAMP [TIME [DATE]]]]
    signal line:  FILE FORMAT[xSPF][:SKEW][+OFFSET] [GAIN[(BASELINE)][/UNITS] [ADCRES
                  [ADCZERO [INITVAL [CHECKSUM [BLOCKSIZE [DESCRIPTION]]]]]]]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from cape.leads import unit_scale_to_mv
from cape.readers._common import inside

_GAIN = re.compile(r"^(?P<gain>[-+0-9.eE]+)(?:\((?P<baseline>[-+0-9]+)\))?(?:/(?P<units>.+))?$")
_INVALID_16 = -32768  # WFDB's "no sample" value for format 16
_DEFAULT_GAIN = 200.0  # header(5): a gain of 0 or none means 200 ADC units per physical unit

# Bytes per sample of each WFDB signal format (PhysioNet ``signal(5)``); FLAC formats are
# compressed (0 = size cannot be checked from the header).
_BYTES_PER_SAMPLE = {
    "8": 1.0,
    "16": 2.0,
    "24": 3.0,
    "32": 4.0,
    "61": 2.0,
    "80": 1.0,
    "160": 2.0,
    "212": 1.5,
    "310": 4 / 3,
    "311": 4 / 3,
    "508": 0.0,
    "516": 0.0,
    "524": 0.0,
}
_FORMAT = re.compile(r"^(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>-?\d+))?(?:\+(?P<offset>\d+))?$")

# Limits on what a header may make a reader allocate (float64: 8 bytes per value).
MAX_RECORD_SECONDS = 600.0  # 10 min; longer recordings: read them with window_seconds
MAX_RECORD_VALUES = 2**24  # 16.8 M values = 134 MB of float64 per record (or per window)
MAX_SIGNALS = 64


class RecordTooLong(ValueError):
    """The record is longer than CAPE reads in one piece (quarantined as ``too_long``)."""


class OutsideSource(ValueError):
    """A file the record needs resolves outside the source folder (``outside_source``)."""


@dataclass(frozen=True)
class HeaderInfo:
    """What a WFDB header claims, checked against the files on disk.

    Attributes:
        n_signals: signals in the record.
        sampling_rate_hz: the record line's rate, ``None`` when absent.
        n_samples: samples per signal (from the header, else from the file size).
        multi_segment: a multi-segment record (segments are checked by ``wfdb``).
        files: the signal files the header names (in the header's folder).
    """

    n_signals: int
    sampling_rate_hz: float | None
    n_samples: int | None
    multi_segment: bool
    files: tuple[str, ...] = ()


def _header_lines(header_path: Path) -> list[str]:
    # Headers are ASCII by the spec; reading at most 1 MB bounds a hostile "header".
    with header_path.open("rb") as handle:
        text = handle.read(1 << 20).decode("latin-1")
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [line for line in lines if line]


def inspect_header(record_path: Path) -> HeaderInfo:
    """Parse a WFDB header and check its claims against the signal files, allocating nothing.

    A header is a claim, not a fact: one saying 10^9 samples over a 20 KB file
    would make ``wfdb`` allocate gigabytes. Every signal file must hold at least
    ``n_samples`` x (bytes per sample of its signals) after its byte offset.

    Raises:
        FileNotFoundError: the header or a signal file is missing.
        ValueError: the header is malformed, names a file outside its folder, or
            claims more samples than its files hold.
    """
    header_path = record_path.with_name(record_path.name + ".hea")
    lines = _header_lines(header_path)
    if not lines:
        raise ValueError(f"{header_path} is empty")
    record = lines[0].split()
    if len(record) < 2:
        raise ValueError(f"{header_path}: record line {lines[0][:80]!r} has no signal count")
    n_signals = int(record[1])
    if not 0 < n_signals <= MAX_SIGNALS:
        raise ValueError(f"{header_path}: {n_signals} signals (expected 1-{MAX_SIGNALS})")
    rate = float(record[2].split("/")[0]) if len(record) > 2 else None
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        rate = None
    n_samples = int(record[3]) if len(record) > 3 else None
    if n_samples is not None and n_samples < 0:
        raise ValueError(f"{header_path}: negative sample count {n_samples}")
    if "/" in record[0]:
        return HeaderInfo(n_signals, rate, n_samples, multi_segment=True)
    if len(lines) < 1 + n_signals:
        raise ValueError(f"{header_path}: {n_signals} signals but {len(lines) - 1} signal lines")
    per_file: dict[str, tuple[float, int]] = {}  # file -> (bytes per frame, byte offset)
    for line in lines[1 : 1 + n_signals]:
        fields = line.split()
        if len(fields) < 2:
            raise ValueError(f"{header_path}: signal line {line[:80]!r} has no format")
        match = _FORMAT.match(fields[1])
        if match is None or match["fmt"] not in _BYTES_PER_SAMPLE:
            raise ValueError(f"{header_path}: unknown signal format {fields[1]!r}")
        name = fields[0]
        if name != "~" and (Path(name).name != name or name in {".", ".."}):
            raise ValueError(f"{header_path}: signal file {name!r} is outside the record's folder")
        frame_bytes, offset = per_file.get(name, (0.0, 0))
        spf = int(match["spf"] or 1)
        per_file[name] = (
            frame_bytes + _BYTES_PER_SAMPLE[match["fmt"]] * spf,
            max(offset, int(match["offset"] or 0)),
        )
    for name, (frame_bytes, offset) in per_file.items():
        if name == "~" or frame_bytes == 0:
            continue
        data_path = header_path.with_name(name)
        if not data_path.is_file():
            raise FileNotFoundError(f"WFDB signal file {data_path} not found")
        held = max(data_path.stat().st_size - offset, 0)
        frames_held = int(held // frame_bytes)
        if n_samples is None:
            n_samples = frames_held
        elif frames_held < n_samples:
            raise ValueError(
                f"{header_path} claims {n_samples} samples but {name} holds {frames_held}"
            )
    files = tuple(name for name in per_file if name != "~")
    return HeaderInfo(n_signals, rate, n_samples, multi_segment=False, files=files)


def check_size(info: HeaderInfo, n_samples: int | None = None) -> None:
    """Refuse to read more than :data:`MAX_RECORD_SECONDS` or :data:`MAX_RECORD_VALUES`.

    Args:
        info: the checked header.
        n_samples: samples to read per signal (a window); default the whole record.

    Raises:
        RecordTooLong: over either cap.
    """
    samples = info.n_samples if n_samples is None else n_samples
    if samples is None:
        return
    if samples * info.n_signals > MAX_RECORD_VALUES:
        raise RecordTooLong(
            f"{samples} samples x {info.n_signals} signals exceed the cap of "
            f"{MAX_RECORD_VALUES} values per record"
        )
    if info.sampling_rate_hz and samples / info.sampling_rate_hz > MAX_RECORD_SECONDS:
        raise RecordTooLong(
            f"{samples / info.sampling_rate_hz:.0f} s exceeds the cap of "
            f"{MAX_RECORD_SECONDS:g} s per record; read long recordings with window_seconds"
        )


def read_format16(
    record_path: Path, sampfrom: int = 0, sampto: int | None = None
) -> tuple[np.ndarray, float | None, list[str], list[str]] | None:
    """Read a single-file format-16 WFDB record, or return None if it is not one.

    Args:
        record_path: record path without extension.
        sampfrom, sampto: the samples to read (default all); only these are loaded.

    Returns:
        ``(signal (n_leads, n_samples) float64 physical units, sampling rate or None,
        lead names, units per lead)``, with invalid samples as NaN — what
        ``wfdb.rdrecord(...).p_signal.T`` gives — or None when the record needs
        the general reader.

    Raises:
        FileNotFoundError: the header or the signal file is missing.
        ValueError: the signal file is shorter than the header says.
    """
    header_path = record_path.with_name(record_path.name + ".hea")
    lines = _header_lines(header_path)
    if not lines:
        return None
    record = lines[0].split()
    if len(record) < 2 or "/" in record[0]:
        return None  # multi-segment record
    n_signals = int(record[1])
    if n_signals < 1 or len(lines) < 1 + n_signals:
        return None
    rate = float(record[2].split("/")[0]) if len(record) > 2 else None
    n_samples = int(record[3]) if len(record) > 3 else None
    files: set[str] = set()
    gains: list[float] = []
    baselines: list[int] = []
    units: list[str] = []
    names: list[str] = []
    for line in lines[1 : 1 + n_signals]:
        fields = line.split(maxsplit=8)
        if len(fields) < 2 or fields[1] != "16":
            return None  # other formats, samples per frame, skew or byte offset
        files.add(fields[0])
        gain, baseline, unit = _DEFAULT_GAIN, None, "mV"
        if len(fields) > 2:
            match = _GAIN.match(fields[2])
            if match is None:
                return None
            gain = float(match["gain"]) or _DEFAULT_GAIN
            baseline = int(match["baseline"]) if match["baseline"] is not None else None
            unit = match["units"] or "mV"
        if baseline is None:
            # The baseline defaults to the ADC zero (field 5), itself 0 by default.
            baseline = int(fields[4]) if len(fields) > 4 else 0
        gains.append(gain)
        baselines.append(baseline)
        units.append(unit)
        names.append(fields[8].strip() if len(fields) > 8 else f"sig{len(names)}")
    if len(files) != 1:
        return None
    data_path = header_path.with_name(files.pop())
    if not data_path.is_file():
        raise FileNotFoundError(f"WFDB signal file {data_path} not found")
    held = data_path.stat().st_size // (2 * n_signals)
    if n_samples is None:
        n_samples = held
    if held < n_samples:
        raise ValueError(f"{data_path} holds {held} samples, header says {n_samples}")
    stop = n_samples if sampto is None else min(sampto, n_samples)
    start = min(max(sampfrom, 0), stop)
    # Only the requested frames are read: memory follows the window, not the file.
    raw = np.fromfile(
        data_path, dtype="<i2", count=(stop - start) * n_signals, offset=start * n_signals * 2
    )
    digital = raw.reshape(stop - start, n_signals).T
    signal = (digital - np.asarray(baselines, dtype=np.float64)[:, None]) / np.asarray(gains)[
        :, None
    ]
    signal[digital == _INVALID_16] = np.nan
    return signal, (rate if rate and rate > 0 else None), names, units


def _header_sampling_rate(header_path: Path) -> float | None:
    """The sampling rate written in a WFDB header's record line, ``None`` if absent.

    Why not ``wfdb.rdheader(...).fs``: the library silently substitutes the
    WFDB default of 250 Hz when the field is missing, which would turn an
    unknown rate into a wrong one.
    """
    for line in _header_lines(header_path):
        tokens = line.split()
        if len(tokens) < 3:
            return None
        # Field form: "fs[/counter_freq[(base_counter)]]".
        rate = float(tokens[2].split("/")[0])
        return rate if math.isfinite(rate) and rate > 0 else None
    return None


def read_wfdb(
    record_path: Path, sampfrom: int = 0, sampto: int | None = None, root: Path | None = None
) -> tuple[np.ndarray, float | None, list[str], str]:
    """Read one WFDB record (or a span of it) as physical values, in bounded memory.

    The header is checked against the signal files first (:func:`inspect_header`)
    and the span read against :data:`MAX_RECORD_SECONDS` and
    :data:`MAX_RECORD_VALUES` (:func:`check_size`), so no header can make this
    allocate more than the caps, whatever it claims.

    Args:
        record_path: record path without extension (``.../00001_hr``).
        sampfrom, sampto: samples to read (default the whole record).
        root: when given, the header and every signal file it names must resolve
            (symlinks followed) inside this folder.

    Returns:
        ``(signal, sampling_rate_hz, lead_names, units)``: ``signal`` is
        ``(n_leads, n_samples)`` float64; ``sampling_rate_hz`` is ``None`` when
        the header has no rate; ``units`` is the header's unit when all leads
        share it, else every lead is converted to millivolts and ``"mV"`` is
        returned.

    Raises:
        FileNotFoundError: header or signal file missing.
        RecordTooLong: the span is over the caps.
        OutsideSource: a file resolves outside ``root``.
        ValueError: a malformed header, one claiming more samples than its files
            hold, or a lead's unit that is not a voltage unit (when units differ).
        Exception: whatever ``wfdb`` raises for a malformed record.
    """
    header_path = record_path.with_name(record_path.name + ".hea")
    if not header_path.is_file():
        raise FileNotFoundError(f"WFDB header {header_path} not found")
    info = inspect_header(record_path)
    if root is not None:
        names = [header_path.name, *info.files]
        outside = [n for n in names if not inside(header_path.with_name(n), root)]
        if outside:
            raise OutsideSource(
                f"{', '.join(outside)} of {record_path.name} resolve outside {root}"
            )
    total = info.n_samples
    stop = sampto if total is None else (total if sampto is None else min(sampto, total))
    if stop is None and info.multi_segment:
        raise ValueError(f"{header_path}: multi-segment record without a sample count")
    check_size(info, None if stop is None else stop - sampfrom)
    sampling_rate_hz = _header_sampling_rate(header_path)
    # Much faster than wfdb for PTB-XL / MIMIC-style files (benchmarks/bench_wfdb.py)
    fast = read_format16(record_path, sampfrom, stop)
    if fast is not None:
        signal, _, lead_names, units = fast
    else:
        record = wfdb.rdrecord(str(record_path), sampfrom=sampfrom, sampto=stop)
        if record.p_signal is None:
            raise ValueError("record has no signal")
        signal = np.asarray(record.p_signal, dtype=np.float64).T
        lead_names = [str(name) for name in record.sig_name]
        units = [str(unit) for unit in record.units]
    if len(set(units)) == 1:
        return signal, sampling_rate_hz, lead_names, units[0]
    scales = np.array([unit_scale_to_mv(unit) for unit in units])
    return signal * scales[:, None], sampling_rate_hz, lead_names, "mV"
