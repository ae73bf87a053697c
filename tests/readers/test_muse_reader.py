from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from cape.errors import CapeError
from cape.readers.muse import MuseReader, decode_lead
from cape.record import Reason

from .conftest import muse_xml, read_all


def test_rhythm_strip_round_trips_amplitudes(tmp_path, muse_counts):
    counts = muse_counts(5000, 1)
    median = {name: values[:600] * 0 + 7 for name, values in counts.items()}
    (tmp_path / "site1").mkdir()
    (tmp_path / "site1" / "ecg_001.xml").write_text(
        muse_xml(counts, median=median), encoding="latin-1"
    )
    records, rejections = read_all(MuseReader(tmp_path, "muse"))
    assert rejections == []
    (record,) = records
    assert record.lead_names == ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    assert record.signal.shape == (8, 5000)  # the Rhythm waveform, not the 600-sample Median
    expected_mv = np.stack(list(counts.values())) * 4.88 / 1000.0
    np.testing.assert_allclose(record.signal, expected_mv, rtol=0, atol=1e-12)
    assert record.units == "mV"
    assert record.sampling_rate_hz == 500.0
    assert record.record_id == "site1/ecg_001"
    assert record.patient_id == "MRN001"
    assert record.metadata["age"] == 63.0
    assert record.metadata["sex"] == "F"
    assert record.metadata["ethnicity"] == "CAUCASIAN"
    assert record.metadata["device"] == "MAC5500"
    assert record.metadata["site"] == "Main Hospital"
    assert record.metadata["recording_date"] == "2021-05-10T13:15:18"
    extra = json.loads(record.metadata["extra"])
    assert extra["statements"] == ["Normal sinus rhythm"] and extra["waveform_type"] == "Rhythm"


def test_median_used_when_there_is_no_rhythm(tmp_path, muse_counts):
    counts = muse_counts(600, 2)
    path = tmp_path / "median.xml"
    path.write_text(muse_xml({}, median=counts, rhythm=False))
    (record,) = read_all(MuseReader(path, "muse"))[0]
    assert record.signal.shape == (8, 600)
    assert json.loads(record.metadata["extra"])["waveform_type"] == "Median"


def test_age_from_birth_date_when_age_missing(tmp_path, muse_counts):
    patient = "<PatientID>X1</PatientID><DateofBirth>05-10-1951</DateofBirth><Gender>MALE</Gender>"
    (tmp_path / "a.xml").write_text(muse_xml(muse_counts(500, 3), patient=patient))
    (record,) = read_all(MuseReader(tmp_path, "muse"))[0]
    assert record.metadata["age"] == pytest.approx(70.0, abs=0.01)
    assert record.metadata["sex"] == "M"


def test_months_are_converted_to_years(tmp_path, muse_counts):
    patient = "<PatientID>X2</PatientID><PatientAge>18</PatientAge><AgeUnits>MONTHS</AgeUnits>"
    (tmp_path / "a.xml").write_text(muse_xml(muse_counts(500, 4), patient=patient))
    (record,) = read_all(MuseReader(tmp_path, "muse"))[0]
    assert record.metadata["age"] == pytest.approx(1.5)


def test_bad_inputs_are_rejected(tmp_path, muse_counts):
    counts = muse_counts(500, 5)
    (tmp_path / "malformed.xml").write_text(muse_xml(counts)[:-40])  # cut mid-element
    (tmp_path / "other.xml").write_text("<AnnotatedECG><x/></AnnotatedECG>")
    (tmp_path / "anonymous.xml").write_text(muse_xml(counts, patient="<PatientAge>40</PatientAge>"))
    (tmp_path / "no_rate.xml").write_text(muse_xml(counts, sample_base=""))
    bad_base64 = muse_xml(counts).replace("<WaveFormData>\n", "<WaveFormData>\n!!**", 1)
    (tmp_path / "bad_base64.xml").write_text(bad_base64)
    ragged = dict(counts)
    ragged["V6"] = ragged["V6"][:400]
    (tmp_path / "ragged.xml").write_text(muse_xml(ragged))
    records, rejections = read_all(MuseReader(tmp_path, "muse"))
    assert records == []
    by_id = {r.record_id: r for r in rejections}
    assert by_id["malformed"].reason is Reason.UNREADABLE
    assert "XML" in by_id["malformed"].detail
    assert by_id["other"].reason is Reason.UNREADABLE
    assert by_id["anonymous"].reason is Reason.MISSING_PATIENT_ID
    assert by_id["no_rate"].reason is Reason.UNKNOWN_SAMPLING_RATE
    assert by_id["bad_base64"].reason is Reason.UNREADABLE
    assert "lead I" in by_id["bad_base64"].detail
    assert by_id["ragged"].reason is Reason.BAD_METADATA
    assert all(r.source_file.endswith(".xml") for r in rejections)


def test_decode_lead_matches_struct_reference():
    values = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    text = base64.b64encode(values.astype("<i2").tobytes()).decode()
    np.testing.assert_array_equal(decode_lead(text[:8] + "\n  " + text[8:]), values)
    with pytest.raises(ValueError, match="int16"):
        decode_lead(base64.b64encode(b"\x01\x02\x03").decode())


def test_constructor_fails_early(tmp_path):
    with pytest.raises(CapeError, match="does not exist"):
        MuseReader(tmp_path / "nope", "muse")
    with pytest.raises(CapeError, match=r"no \.xml files"):
        MuseReader(tmp_path, "muse")
    (tmp_path / "a.xml").write_text("<RestingECG/>")
    with pytest.raises(CapeError, match="unknown option"):
        MuseReader(tmp_path, "muse", files_per_tsk=3)
