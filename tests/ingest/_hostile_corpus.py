"""Build hostile inputs at test time: the simulator's ECGs written through the real formats.

Signals come from the simulator (``tiny`` preset, cohort ``harbor``: 500 Hz,
10 s, 12 leads in mV); files are written with the formats' own libraries
(``wfdb``, ``pydicom``) or, for MUSE XML, as base64 int16 leads. Each helper
writes one file (or record) and changes exactly one thing a real export can
get wrong.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

LEADS12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
FS = 500
TWELVE_LEAD_ECG_STORAGE = "1.2.840.10008.5.1.4.1.1.9.1.1"


@functools.lru_cache(maxsize=1)
def simulated_ecgs() -> np.ndarray:
    """``(n, 12, 5000)`` mV: 10 s ECGs at 500 Hz of the simulator's ``harbor`` cohort."""
    from cape.simulator.generate import iter_cohort_chunks
    from cape.simulator.presets import tiny

    chunk = next(iter_cohort_chunks(tiny(), "harbor"))
    assert chunk.sampling_rate_hz == FS
    return np.asarray(chunk.signals, dtype=np.float64)


def ecg(k: int) -> np.ndarray:
    """The k-th simulated ECG, ``(12, 5000)`` mV."""
    return simulated_ecgs()[k]


# --------------------------------------------------------------------------- WFDB


def write_wfdb(
    folder: Path,
    name: str,
    signal_mv: np.ndarray,
    *,
    header_fs: float = FS,
    header_gain: float = 1000.0,
    lead_names: Sequence[str] = LEADS12,
) -> None:
    """Write 16-bit WFDB quantised at 1 µV; the header may lie about rate and gain."""
    folder.mkdir(parents=True, exist_ok=True)
    digital = np.round(signal_mv * 1000.0).astype(np.int32)
    wfdb.wrsamp(
        name,
        fs=header_fs,
        units=["mV"] * signal_mv.shape[0],
        sig_name=list(lead_names),
        d_signal=digital.T,
        fmt=["16"] * signal_mv.shape[0],
        adc_gain=[float(header_gain)] * signal_mv.shape[0],
        baseline=[0] * signal_mv.shape[0],
        write_dir=str(folder),
    )


def write_hostile_212_header(folder: Path, name: str, n_samples: int = 10**9) -> None:
    """A format-212 record whose header claims ``n_samples`` over a 30 KB signal file."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{name} 12 {FS} {n_samples}"]
    lines += [f"{name}.dat 212 1000/mV 12 0 0 0 0 {lead}" for lead in LEADS12]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    (folder / f"{name}.dat").write_bytes(bytes(30_000))


def write_metadata(folder: Path, rows: list[dict[str, str]], extra_bytes: bytes = b"") -> None:
    """``metadata.csv`` with the rows; ``extra_bytes`` appended as raw lines (bad encodings)."""
    text = pd.DataFrame(rows).to_csv(index=False).encode()
    (folder / "metadata.csv").write_bytes(text + extra_bytes)


# --------------------------------------------------------------------------- DICOM


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "UCUM", meaning
    return item


def write_dicom(
    path: Path,
    signal_mv: np.ndarray,
    patient_id: str,
    *,
    sensitivity_error: float = 1.0,
    sampling_frequency: str = "500.0000",
) -> None:
    """A 12-lead DICOM ECG (µV at 1 µV per count); the sensitivity may be off by a factor."""
    raw = np.round(signal_mv * 1000.0).astype("<i2").T  # (samples, channels)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = TWELVE_LEAD_ECG_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = TWELVE_LEAD_ECG_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "ECG"
    ds.PatientID = patient_id
    group = Dataset()
    group.MultiplexGroupLabel = "RHYTHM"
    group.SamplingFrequency = "500.0000"
    group.NumberOfWaveformChannels = raw.shape[1]
    group.NumberOfWaveformSamples = raw.shape[0]
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    channels = []
    for lead in LEADS12:
        item = Dataset()
        item.ChannelSourceSequence = [_code("x", f"Lead {lead}")]
        item.ChannelSensitivity = float(sensitivity_error)
        item.ChannelSensitivityUnitsSequence = [_code("uV", "microvolt")]
        item.ChannelSensitivityCorrectionFactor = 1
        item.ChannelBaseline = 0
        item.WaveformBitsStored = 16
        channels.append(item)
    group.ChannelDefinitionSequence = channels
    group.WaveformData = np.ascontiguousarray(raw).tobytes()
    ds.WaveformSequence = [group]
    ds.save_as(path, enforce_file_format=True)
    if sampling_frequency != "500.0000":  # pydicom refuses to write an invalid DS: patch bytes
        data = path.read_bytes()
        assert len(sampling_frequency) == 8 and data.count(b"500.0000") == 1
        path.write_bytes(data.replace(b"500.0000", sampling_frequency.encode()))


# --------------------------------------------------------------------------- MUSE


def muse_xml(
    signal_mv: np.ndarray,
    patient_id: str,
    *,
    units_per_bit: float = 4.88,
    written_units_per_bit: float | None = None,
    sample_exponent: str = "0",
) -> str:
    """A MUSE RestingECG export of leads I, II, V1-V6 (int16 counts at ``units_per_bit`` µV).

    ``written_units_per_bit`` is what the file claims (a gain error when it differs).
    """
    claimed = units_per_bit if written_units_per_bit is None else written_units_per_bit
    leads = ""
    for index in (0, 1, 6, 7, 8, 9, 10, 11):
        counts = np.round(signal_mv[index] * 1000.0 / units_per_bit).astype("<i2")
        data = base64.b64encode(counts.tobytes()).decode("ascii")
        leads += (
            f"<LeadData><LeadAmplitudeUnitsPerBit>{claimed}</LeadAmplitudeUnitsPerBit>"
            f"<LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits><LeadID>{LEADS12[index]}</LeadID>"
            f"<WaveFormData>{data}</WaveFormData></LeadData>"
        )
    return (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<RestingECG>'
        f"<PatientDemographics><PatientID>{patient_id}</PatientID></PatientDemographics>"
        "<Waveform><WaveformType>Rhythm</WaveformType>"
        f"<SampleBase>{FS}</SampleBase><SampleExponent>{sample_exponent}</SampleExponent>"
        f"{leads}</Waveform></RestingECG>"
    )


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<RestingECG>&lol3;</RestingECG>"
)
