"""Reading WFDB records: a fast path for one-file format-16 records, ``wfdb`` for the rest.

``wfdb.rdrecord`` spends ~40 ms per record parsing the header (through pandas
indexing), ten times the cost of everything else ingest does with the record.
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

import re
from pathlib import Path

import numpy as np
import wfdb

from cape.leads import unit_scale_to_mv

_GAIN = re.compile(r"^(?P<gain>[-+0-9.eE]+)(?:\((?P<baseline>[-+0-9]+)\))?(?:/(?P<units>.+))?$")
_INVALID_16 = -32768  # WFDB's "no sample" value for format 16
_DEFAULT_GAIN = 200.0  # header(5): a gain of 0 or none means 200 ADC units per physical unit


def read_format16(
    record_path: Path,
) -> tuple[np.ndarray, float | None, list[str], list[str]] | None:
    """Read a single-file format-16 WFDB record, or return None if it is not one.

    Args:
        record_path: record path without extension.

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
    lines = [
        line.split("#", 1)[0].strip()
        for line in header_path.read_text(errors="replace").splitlines()
    ]
    lines = [line for line in lines if line]
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
    raw = np.fromfile(data_path, dtype="<i2")
    if n_samples is None:
        n_samples = raw.size // n_signals
    needed = n_samples * n_signals
    if raw.size < needed:
        raise ValueError(
            f"{data_path} holds {raw.size} samples, header says {n_samples} x {n_signals}"
        )
    digital = raw[:needed].reshape(n_samples, n_signals).T
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
    with header_path.open(encoding="latin-1") as handle:
        for line in handle:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            tokens = stripped.split()
            if len(tokens) < 3:
                return None
            # Field form: "fs[/counter_freq[(base_counter)]]".
            rate = float(tokens[2].split("/")[0])
            return rate if rate > 0 else None
    return None


def read_wfdb(record_path: Path) -> tuple[np.ndarray, float | None, list[str], str]:
    """Read one WFDB record as physical values.

    Args:
        record_path: record path without extension (``.../00001_hr``).

    Returns:
        ``(signal, sampling_rate_hz, lead_names, units)``: ``signal`` is
        ``(n_leads, n_samples)`` float64; ``sampling_rate_hz`` is ``None`` when
        the header has no rate; ``units`` is the header's unit when all leads
        share it, else every lead is converted to millivolts and ``"mV"`` is
        returned.

    Raises:
        FileNotFoundError: header or signal file missing.
        ValueError: a lead's unit is not a voltage unit (when units differ per lead).
        Exception: whatever ``wfdb`` raises for a malformed record.
    """
    header_path = record_path.with_name(record_path.name + ".hea")
    if not header_path.is_file():
        raise FileNotFoundError(f"WFDB header {header_path} not found")
    sampling_rate_hz = _header_sampling_rate(header_path)
    fast = read_format16(record_path)  # ~10x faster than wfdb for PTB-XL / MIMIC-style files
    if fast is not None:
        signal, _, lead_names, units = fast
    else:
        record = wfdb.rdrecord(str(record_path))
        if record.p_signal is None:
            raise ValueError("record has no signal")
        signal = np.asarray(record.p_signal, dtype=np.float64).T
        lead_names = [str(name) for name in record.sig_name]
        units = [str(unit) for unit in record.units]
    if len(set(units)) == 1:
        return signal, sampling_rate_hz, lead_names, units[0]
    scales = np.array([unit_scale_to_mv(unit) for unit in units])
    return signal * scales[:, None], sampling_rate_hz, lead_names, "mV"
