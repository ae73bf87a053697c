"""GE MUSE XML reader (``<RestingECG>`` exports).

Source: one ``.xml`` file or a folder searched recursively for ``*.xml``.

The parts of the export CAPE uses::

    <RestingECG>
      <PatientDemographics>
        <PatientID/> <PatientAge/> <AgeUnits>YEARS</AgeUnits> <DateofBirth>MM-DD-YYYY</DateofBirth>
        <Gender>MALE|FEMALE</Gender> <Race/>
      </PatientDemographics>
      <TestDemographics>
        <AcquisitionDevice/> <Site/> <SiteName/>
        <AcquisitionDate>MM-DD-YYYY</AcquisitionDate> <AcquisitionTime>HH:MM:SS</AcquisitionTime>
      </TestDemographics>
      <Waveform>                                  (one Median, one Rhythm)
        <WaveformType>Rhythm</WaveformType>
        <SampleBase>500</SampleBase> <SampleExponent>0</SampleExponent>
        <LeadData>
          <LeadAmplitudeUnitsPerBit>4.88</LeadAmplitudeUnitsPerBit>
          <LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits>
          <LeadID>I</LeadID>
          <WaveFormData>base64 of little-endian int16</WaveFormData>
        </LeadData> ...
      </Waveform>
    </RestingECG>

The Rhythm waveform is used (the Median beat only when there is no Rhythm).
Sampling rate = ``SampleBase x 10^SampleExponent``. Each lead is converted to
millivolts with its own ``LeadAmplitudeUnitsPerBit`` and ``LeadAmplitudeUnits``
(MICROVOLTS when the unit is absent, GE's only unit in practice). Many exports
hold only I, II, V1-V6; ingest derives what it needs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import numpy as np
from defusedxml import DefusedXmlException

from cape.leads import unit_scale_to_mv
from cape.readers._common import to_json
from cape.readers.base import FileReader
from cape.record import ECGRecord, Reason, Rejection, clean_age, normalise_sex

logger = logging.getLogger(__name__)

_DAYS_PER_YEAR = 365.25
_AGE_UNIT_YEARS = {
    "YEARS": 1.0,
    "MONTHS": 1 / 12,
    "WEEKS": 7 / _DAYS_PER_YEAR,
    "DAYS": 1 / _DAYS_PER_YEAR,
    "HOURS": 1 / (24 * _DAYS_PER_YEAR),
}
_MUSE_UNITS = {"MICROVOLTS": "uV", "MILLIVOLTS": "mV", "VOLTS": "V"}


def _text(element: ET.Element | None, tag: str) -> str | None:
    """Stripped text of the first child ``tag`` (None when absent or empty)."""
    if element is None:
        return None
    child = element.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _parse_muse_date(text: str | None) -> dt.date | None:
    for fmt in ("%m-%d-%Y", "%m/%d/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text or "", fmt).date()
        except ValueError:
            continue
    return None


def _choose_waveform(root: ET.Element) -> ET.Element | None:
    waveforms = [w for w in root.iter("Waveform") if w.find("LeadData") is not None]
    for waveform in waveforms:
        if (_text(waveform, "WaveformType") or "").lower() == "rhythm":
            return waveform
    return waveforms[0] if waveforms else None


def decode_lead(text: str) -> np.ndarray:
    """Base64 of little-endian int16 -> int16 samples.

    Raises:
        ValueError: not base64, or an odd number of bytes.
    """
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"WaveFormData is not base64 ({error})") from None
    if len(raw) % 2:
        raise ValueError(f"WaveFormData has {len(raw)} bytes, not whole int16 samples")
    return np.frombuffer(raw, dtype="<i2")


class MuseReader(FileReader):
    """Reads GE MUSE XML exports.

    Metadata: ``PatientID`` (required), ``PatientAge`` + ``AgeUnits`` (or
    ``DateofBirth`` with ``AcquisitionDate``), ``Gender``, ``Race`` ->
    ethnicity, ``AcquisitionDevice`` -> device, ``SiteName`` (else ``Site``)
    -> site, ``AcquisitionDate`` + ``AcquisitionTime`` -> recording_date (ISO).
    ``record_id`` is the file path relative to the source, without suffix
    (MUSE exports carry no unique exam id). Diagnosis statements go to
    ``extra`` as ``statements``.

    Options:
        files_per_task: files per task (default 20).

    Raises:
        CapeError: the source does not exist or holds no ``.xml`` file.
    """

    format_name = "muse"

    suffix = ".xml"

    def read_file(self, path: Path) -> ECGRecord | Rejection:
        """One MUSE XML file -> a record, or a rejection saying what is wrong with it."""
        source_file = str(path)
        record_id = (
            path.relative_to(self.source).with_suffix("").as_posix()
            if self.source.is_dir()
            else path.stem
        )
        try:
            # defusedxml: an export is untrusted input (entity expansion, external entities).
            root = SafeET.parse(path).getroot()
        except (ET.ParseError, OSError, UnicodeDecodeError, DefusedXmlException) as error:
            return Rejection(
                self.cohort,
                source_file,
                Reason.UNREADABLE,
                f"not well-formed XML: {error}",
                record_id,
            )
        if root.tag != "RestingECG":
            return Rejection(
                self.cohort,
                source_file,
                Reason.UNREADABLE,
                f"root element is <{root.tag}>, not <RestingECG>",
                record_id,
            )
        patient = root.find("PatientDemographics")
        patient_id = _text(patient, "PatientID")
        if patient_id is None:
            return Rejection(
                self.cohort,
                source_file,
                Reason.MISSING_PATIENT_ID,
                "PatientDemographics/PatientID is empty",
                record_id,
            )
        waveform = _choose_waveform(root)
        if waveform is None:
            return Rejection(
                self.cohort,
                source_file,
                Reason.UNREADABLE,
                "no <Waveform> with <LeadData>",
                record_id,
                patient_id,
            )
        try:
            base = float(_text(waveform, "SampleBase") or "nan")
            exponent = int(_text(waveform, "SampleExponent") or 0)
            # |exponent| > 6 is no ECG rate; 10.0**400 would raise OverflowError.
            sampling_rate = base * 10.0**exponent if abs(exponent) <= 6 else math.nan
        except (ValueError, OverflowError):
            sampling_rate = math.nan
        if not sampling_rate > 0:
            return Rejection(
                self.cohort,
                source_file,
                Reason.UNKNOWN_SAMPLING_RATE,
                "Waveform has no usable SampleBase/SampleExponent",
                record_id,
                patient_id,
            )
        leads: list[np.ndarray] = []
        names: list[str] = []
        for k, lead in enumerate(waveform.findall("LeadData")):
            name = _text(lead, "LeadID") or f"lead{k + 1}"
            try:
                per_bit = float(_text(lead, "LeadAmplitudeUnitsPerBit") or "nan")
                muse_unit = (_text(lead, "LeadAmplitudeUnits") or "MICROVOLTS").upper()
                scale = per_bit * unit_scale_to_mv(_MUSE_UNITS.get(muse_unit, muse_unit))
                if not math.isfinite(scale) or scale == 0:
                    raise ValueError("LeadAmplitudeUnitsPerBit missing or zero")
            except ValueError as error:
                return Rejection(
                    self.cohort,
                    source_file,
                    Reason.BAD_METADATA,
                    f"lead {name}: {error}",
                    record_id,
                    patient_id,
                )
            try:
                samples = decode_lead(_text(lead, "WaveFormData") or "")
            except ValueError as error:
                return Rejection(
                    self.cohort,
                    source_file,
                    Reason.UNREADABLE,
                    f"lead {name}: {error}",
                    record_id,
                    patient_id,
                )
            leads.append(samples.astype(np.float64) * scale)
            names.append(name)
        lengths = {lead.size for lead in leads}
        if len(lengths) != 1 or 0 in lengths:
            return Rejection(
                self.cohort,
                source_file,
                Reason.BAD_METADATA,
                f"leads have lengths {sorted(lengths)}",
                record_id,
                patient_id,
            )
        return ECGRecord(
            record_id,
            patient_id,
            self.cohort,
            np.stack(leads),
            sampling_rate,
            names,
            "mV",
            source_file,
            metadata=self._metadata(root, patient, waveform),
        )

    @staticmethod
    def _metadata(
        root: ET.Element, patient: ET.Element | None, waveform: ET.Element
    ) -> dict[str, Any]:
        test = root.find("TestDemographics")
        acquired = _parse_muse_date(_text(test, "AcquisitionDate"))
        age = clean_age(_text(patient, "PatientAge"))
        unit = (_text(patient, "AgeUnits") or "YEARS").upper()
        age = age * _AGE_UNIT_YEARS[unit] if unit in _AGE_UNIT_YEARS else math.nan
        if math.isnan(age):
            birth = _parse_muse_date(_text(patient, "DateofBirth"))
            if birth is not None and acquired is not None and acquired >= birth:
                age = (acquired - birth).days / _DAYS_PER_YEAR
        recording_date = None
        if acquired is not None:
            time = _text(test, "AcquisitionTime")
            recording_date = acquired.isoformat() + (f"T{time}" if time else "")
        statements = [s.text.strip() for s in root.iter("StmtText") if s.text and s.text.strip()]
        extra = {
            "waveform_type": _text(waveform, "WaveformType"),
            "statements": statements or None,
            "high_pass_hz": _text(waveform, "HighPassFilter"),
            "low_pass_hz": _text(waveform, "LowPassFilter"),
            "ac_filter_hz": _text(waveform, "ACFilter"),
        }
        return {
            "age": age,
            "sex": normalise_sex(_text(patient, "Gender")),
            "device": _text(test, "AcquisitionDevice"),
            "site": _text(test, "SiteName") or _text(test, "Site"),
            "ethnicity": _text(patient, "Race"),
            "recording_date": recording_date,
            "extra": to_json(extra),
        }
