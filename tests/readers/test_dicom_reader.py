from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cape.errors import CapeError
from cape.leads import STANDARD_12
from cape.readers.dicom import DicomReader, dicom_age_years
from cape.record import Reason

from .conftest import read_all

TWELVE_LEAD_ECG_STORAGE = "1.2.840.10008.5.1.4.1.1.9.1.1"
REAL_FILE = Path(get_testdata_file("waveform_ecg.dcm"))


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def write_ecg_dicom(path: Path, raw: np.ndarray, channels: list[dict], **patient: str) -> None:
    """A 12-lead ECG waveform object written with pydicom.

    ``raw`` is ``(n_samples, n_channels)`` int16; each channel dict holds
    ``name``, ``sensitivity``, ``unit`` (UCUM), ``correction``, ``baseline``.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = TWELVE_LEAD_ECG_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = TWELVE_LEAD_ECG_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "ECG"
    for key, value in patient.items():
        setattr(ds, key, value)
    group = Dataset()
    group.MultiplexGroupLabel = "RHYTHM"
    group.SamplingFrequency = 500
    group.NumberOfWaveformChannels = raw.shape[1]
    group.NumberOfWaveformSamples = raw.shape[0]
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    definitions = []
    for channel in channels:
        item = Dataset()
        item.ChannelSourceSequence = [_code("x", "SCPECG", channel["name"])]
        item.ChannelSensitivity = channel["sensitivity"]
        item.ChannelSensitivityUnitsSequence = [_code(channel["unit"], "UCUM", channel["unit"])]
        item.ChannelSensitivityCorrectionFactor = channel.get("correction", 1)
        item.ChannelBaseline = channel.get("baseline", 0)
        item.WaveformBitsStored = 16
        definitions.append(item)
    group.ChannelDefinitionSequence = definitions
    group.WaveformData = np.ascontiguousarray(raw, dtype="<i2").tobytes()
    ds.WaveformSequence = [group]
    ds.save_as(path, enforce_file_format=True)


# --------------------------------------------------------------------------- the real file


def test_pydicom_real_ecg_file():
    records, rejections = read_all(DicomReader(REAL_FILE, "dcm"))
    assert rejections == []
    (record,) = records
    assert record.signal.shape == (12, 10000)  # 10 s at 1000 Hz, the RHYTHM group
    assert record.sampling_rate_hz == 1000.0
    assert record.units == "mV"
    assert record.lead_names == [
        "I",
        "II",
        "III",
        "aVR",
        "aVL",
        "aVF",
        "V1",
        "V2",
        "V3",
        "V4",
        "V5",
        "V6",
    ]
    assert record.patient_id == "642341"
    # QRS peaks of a resting ECG: a few tenths to a few mV on every lead.
    peaks = np.abs(record.signal).max(axis=1)
    assert np.all((peaks > 0.3) & (peaks < 5.0)), peaks
    # Einthoven: III = II - I. The cart stores III derived from I and II, so it holds to
    # one quantisation step of 1.25 uV (ChannelSensitivity); measured residual is 0.
    lead_i, lead_ii, lead_iii = record.signal[:3]
    np.testing.assert_allclose(lead_iii, lead_ii - lead_i, atol=1.25e-3)
    # Goldberger's aVF = II - I/2 holds to half a step (the halving is rounded).
    np.testing.assert_allclose(record.signal[5], lead_ii - lead_i / 2, atol=0.625e-3 + 1e-9)
    assert record.metadata["sex"] == "F"
    assert record.metadata["age"] == 42.0  # PatientAge "042Y"
    assert record.metadata["device"] == "Mortara Instrument, Inc. el250"
    assert record.metadata["recording_date"] == "2013-01-25T10:59:19"
    assert json.loads(record.metadata["extra"])["multiplex_group"] == "RHYTHM"


def test_real_file_values_match_pydicom_raw_times_sensitivity():
    ds = pydicom.dcmread(REAL_FILE)
    group = ds.WaveformSequence[0]
    raw = np.frombuffer(group.WaveformData, dtype="<i2").reshape(10000, 12)
    naive_mv = raw * 1.25 / 1000.0  # every channel: 1.25 uV per unit, baseline 0
    (record,) = read_all(DicomReader(REAL_FILE, "dcm"))[0]
    np.testing.assert_allclose(record.signal, naive_mv.T, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- crafted files


def test_crafted_file_units_sensitivity_baseline_and_birth_date(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(-2000, 2000, size=(1500, 3)).astype(np.int16)
    channels = [
        {"name": "Lead I (Einthoven)", "sensitivity": 2.5, "unit": "uV"},
        {"name": "Lead II", "sensitivity": 0.005, "unit": "mV", "correction": 2.0},
        {"name": "Lead V1", "sensitivity": 1.0, "unit": "uV", "baseline": 10.0},
    ]
    (tmp_path / "a").mkdir()  # nested: the folder is searched recursively
    write_ecg_dicom(
        tmp_path / "a" / "ecg.dcm",
        raw,
        channels,
        PatientID="P-9",
        PatientSex="M",
        PatientBirthDate="19600115",
        AcquisitionDateTime="20200115103000",
        Manufacturer="GE",
        ManufacturerModelName="MAC 5500",
    )
    (record,) = read_all(DicomReader(tmp_path, "dcm"))[0]
    expected = np.stack(
        [
            raw[:, 0] * 2.5 / 1000.0,  # uV -> mV
            raw[:, 1] * 0.005 * 2.0,  # mV, with the correction factor
            (raw[:, 2] * 1.0 + 10.0) / 1000.0,  # baseline in sensitivity units (pydicom, PS3.3)
        ]
    )
    np.testing.assert_allclose(record.signal, expected, atol=1e-12)
    assert record.lead_names == ["I", "II", "V1"]
    assert record.sampling_rate_hz == 500.0
    assert record.metadata["age"] == pytest.approx(60.0, abs=0.01)  # from the birth date
    assert record.metadata["sex"] == "M"
    assert record.metadata["device"] == "GE MAC 5500"


def test_corrupt_files_are_rejected(tmp_path):
    (tmp_path / "garbage.dcm").write_bytes(b"\x00not dicom at all" * 20)
    data = REAL_FILE.read_bytes()
    (tmp_path / "truncated.dcm").write_bytes(data[: int(len(data) * 0.6)])
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "ct.dcm")  # image, no waveform
    raw = np.zeros((100, 1), dtype=np.int16)
    write_ecg_dicom(
        tmp_path / "anon.dcm",
        raw,
        [{"name": "Lead I", "sensitivity": 1, "unit": "uV"}],
        PatientID="",
    )
    write_ecg_dicom(
        tmp_path / "counts.dcm",
        raw,
        [{"name": "Lead I", "sensitivity": 1, "unit": "{counts}"}],
        PatientID="P1",
    )
    records, rejections = read_all(DicomReader(tmp_path, "dcm", files_per_task=2))
    assert records == []
    by_file = {Path(r.source_file).name: r for r in rejections}
    assert by_file["garbage.dcm"].reason is Reason.UNREADABLE
    assert by_file["truncated.dcm"].reason is Reason.UNREADABLE
    assert by_file["ct.dcm"].reason is Reason.UNREADABLE
    assert "WaveformSequence" in by_file["ct.dcm"].detail
    assert by_file["anon.dcm"].reason is Reason.MISSING_PATIENT_ID
    assert by_file["counts.dcm"].reason is Reason.BAD_METADATA
    assert "{counts}" in by_file["counts.dcm"].detail


def test_folder_tasks_and_errors(tmp_path):
    for k in range(3):
        shutil.copy(REAL_FILE, tmp_path / f"e{k}.DCM")
    (tmp_path / "notes.txt").write_text("not an ECG")
    tasks = DicomReader(tmp_path, "dcm", files_per_task=2).tasks()
    assert all(t.key.startswith("files-") for t in tasks)
    assert sorted(Path(f).name for t in tasks for f in t.payload) == [f"e{k}.DCM" for k in range(3)]
    assert sum(t.n_items for t in tasks) == 3
    # Keys follow the files, not their positions: a new file leaves the other groups alone.
    shutil.copy(REAL_FILE, tmp_path / "a_first.dcm")
    again = DicomReader(tmp_path, "dcm", files_per_task=2).tasks()
    changed = {t.key for t in again} ^ {t.key for t in tasks}
    assert len(changed) <= 3  # the group that gained the file (before, after), maybe a split
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CapeError, match=r"no \.dcm files"):
        DicomReader(empty, "dcm")
    with pytest.raises(CapeError, match="does not exist"):
        DicomReader(tmp_path / "missing", "dcm")


@pytest.mark.parametrize(
    ("text", "years"),
    [("063Y", 63.0), ("006M", 0.5), ("052W", 52 * 7 / 365.25), ("030D", 30 / 365.25)],
)
def test_dicom_age_string(text, years):
    assert dicom_age_years(text) == pytest.approx(years)


def test_dicom_age_string_invalid_is_nan():
    assert np.isnan(dicom_age_years("")) and np.isnan(dicom_age_years("63 years"))


def test_lead_names_resolve_to_standard_leads():
    from cape.leads import canonical_lead_name

    (record,) = read_all(DicomReader(REAL_FILE, "dcm"))[0]
    assert [canonical_lead_name(n) for n in record.lead_names] == list(STANDARD_12)
