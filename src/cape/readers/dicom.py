"""DICOM ECG waveform reader (12-lead / general ECG waveform objects, read with pydicom).

Source: one ``.dcm`` file or a folder searched recursively for ``*.dcm``.

Signal: the multiplex group of ``WaveformSequence`` labelled ``RHYTHM`` (else
the longest group that is not a median beat). ``ds.waveform_array(i)``
(pydicom >= 2.1) returns ``(samples, channels)`` with, per channel, ``raw x
ChannelSensitivity x ChannelSensitivityCorrectionFactor + ChannelBaseline``,
i.e. values in the channel's ``ChannelSensitivityUnitsSequence`` unit (UCUM
code ``uV``, ``mV``, ...). CAPE converts every channel to millivolts with its
own unit and reports ``"mV"``.

Lead names come from each channel's ``ChannelSourceSequence`` code meaning
(``"Lead I (Einthoven)"``, ``"Lead aVR"``), with the ``Lead`` prefix and the
parenthesised eponym removed (``"I"``, ``"aVR"``); ``ChannelLabel`` when the
code meaning is absent.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from cape.leads import unit_scale_to_mv
from cape.readers._common import to_json
from cape.readers.base import FileReader
from cape.record import ECGRecord, Reason, Rejection, normalise_sex

logger = logging.getLogger(__name__)

# DICOM Age String (AS): nnnD, nnnW, nnnM or nnnY.
_AGE_STRING = re.compile(r"^\s*(\d{1,3})\s*([DWMY])\s*$", re.IGNORECASE)
_DAYS_PER_YEAR = 365.25
_AGE_UNIT_YEARS = {"D": 1 / _DAYS_PER_YEAR, "W": 7 / _DAYS_PER_YEAR, "M": 1 / 12, "Y": 1.0}


def dicom_age_years(age_string: Any) -> float:
    """Years from a DICOM Age String (``"063Y"`` -> 63.0, ``"006M"`` -> 0.5); NaN if invalid."""
    match = _AGE_STRING.match(str(age_string or ""))
    if not match:
        return float("nan")
    return int(match.group(1)) * _AGE_UNIT_YEARS[match.group(2).upper()]


def _parse_date(value: Any) -> dt.date | None:
    text = str(value or "").strip()
    if len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        return dt.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _iso_datetime(value: Any) -> str | None:
    """``YYYYMMDDHHMMSS[.ffffff]`` (DICOM DT) -> ISO 8601; ``None`` if unparsable."""
    text = str(value or "").strip()
    date = _parse_date(text)
    if date is None:
        return None
    time = text[8:14]
    if len(time) == 6 and time.isdigit():
        return f"{date.isoformat()}T{time[:2]}:{time[2:4]}:{time[4:6]}"
    return date.isoformat()


def _lead_name(channel: Any, index: int) -> str:
    name = None
    sources = channel.get("ChannelSourceSequence")
    if sources:
        name = str(sources[0].get("CodeMeaning", "") or "").strip() or None
    name = name or str(channel.get("ChannelLabel", "") or "").strip() or f"channel{index + 1}"
    name = name.split("(")[0].strip()  # "Lead I (Einthoven)" -> "Lead I"
    if name.lower().startswith("lead "):
        name = name[5:].strip()
    return name


def _channel_unit(channel: Any) -> str | None:
    units = channel.get("ChannelSensitivityUnitsSequence")
    if not units:
        return None
    return str(units[0].get("CodeValue", "") or "").strip() or None


def _choose_group(ds: Any) -> int:
    """Index of the rhythm multiplex group (else the longest non-median group)."""
    groups = list(ds.WaveformSequence)
    labels = [str(g.get("MultiplexGroupLabel", "") or "").upper() for g in groups]
    for index, label in enumerate(labels):
        if "RHYTHM" in label:
            return index
    candidates = [i for i, label in enumerate(labels) if "MEDIAN" not in label] or list(
        range(len(groups))
    )
    return max(candidates, key=lambda i: int(groups[i].get("NumberOfWaveformSamples", 0) or 0))


class DicomReader(FileReader):
    """Reads DICOM ECG waveform files.

    Metadata: ``PatientID`` (required), ``PatientSex``, ``PatientAge`` (or
    ``PatientBirthDate`` with the acquisition date), ``Manufacturer`` +
    ``ManufacturerModelName`` -> device, ``InstitutionName`` -> site,
    ``EthnicGroup`` -> ethnicity, ``AcquisitionDateTime`` (else
    ``AcquisitionDate``/``ContentDate``/``StudyDate``) -> recording_date.
    ``record_id`` is the ``SOPInstanceUID`` (else the file path relative to the
    source, without suffix).

    Options:
        files_per_task: files per task (default 20).

    Raises:
        CapeError: the source does not exist or holds no ``.dcm`` file.
    """

    format_name = "dicom"

    suffix = ".dcm"

    def read_file(self, path: Path) -> ECGRecord | Rejection:
        """One DICOM file -> a record, or a rejection saying what is wrong with it."""
        source_file = str(path)
        try:
            ds = pydicom.dcmread(path)
        except Exception as error:  # InvalidDicomError, truncated files, OSError ...
            return Rejection(
                self.cohort,
                source_file,
                Reason.UNREADABLE,
                f"not a readable DICOM file: {type(error).__name__}: {error}",
            )
        record_id = str(ds.get("SOPInstanceUID", "") or "").strip() or self._relative_stem(path)
        patient_id = str(ds.get("PatientID", "") or "").strip() or None
        if "WaveformSequence" not in ds or not ds.WaveformSequence:
            return Rejection(
                self.cohort,
                source_file,
                Reason.UNREADABLE,
                "no WaveformSequence: not a DICOM waveform object",
                record_id,
                patient_id,
            )
        if patient_id is None:
            return Rejection(
                self.cohort, source_file, Reason.MISSING_PATIENT_ID, "PatientID is empty", record_id
            )
        try:
            index = _choose_group(ds)
            group = ds.WaveformSequence[index]
            values = np.asarray(ds.waveform_array(index), dtype=np.float64).T
            channels = list(group.ChannelDefinitionSequence)
        except Exception as error:  # truncated data, missing required elements ...
            return Rejection(
                self.cohort,
                source_file,
                Reason.UNREADABLE,
                f"cannot decode the waveform: {type(error).__name__}: {error}",
                record_id,
                patient_id,
            )
        if len(channels) != values.shape[0]:
            return Rejection(
                self.cohort,
                source_file,
                Reason.BAD_METADATA,
                f"{len(channels)} channel definitions for {values.shape[0]} channels",
                record_id,
                patient_id,
            )
        scales = []
        for k, channel in enumerate(channels):
            unit = _channel_unit(channel)
            try:
                scales.append(unit_scale_to_mv(unit or ""))
            except ValueError:
                return Rejection(
                    self.cohort,
                    source_file,
                    Reason.BAD_METADATA,
                    f"channel {k + 1} ({_lead_name(channel, k)}) has unit {unit!r}; "
                    "expected a voltage (ChannelSensitivityUnitsSequence)",
                    record_id,
                    patient_id,
                )
        try:
            sampling_rate = float(group.get("SamplingFrequency", 0) or 0)
        except (TypeError, ValueError, OverflowError):
            sampling_rate = float("nan")  # e.g. a DS value "abcdefgh"
        if not sampling_rate > 0:
            return Rejection(
                self.cohort,
                source_file,
                Reason.UNKNOWN_SAMPLING_RATE,
                f"multiplex group has no usable SamplingFrequency ({group.get('SamplingFrequency')!r})",
                record_id,
                patient_id,
            )
        return ECGRecord(
            record_id,
            patient_id,
            self.cohort,
            values * np.array(scales)[:, None],
            sampling_rate,
            [_lead_name(c, k) for k, c in enumerate(channels)],
            "mV",
            source_file,
            metadata=self._metadata(ds, group),
        )

    def _relative_stem(self, path: Path) -> str:
        if self.source.is_dir():
            return path.relative_to(self.source).with_suffix("").as_posix()
        return path.stem

    @staticmethod
    def _metadata(ds: Any, group: Any) -> dict[str, Any]:
        acquired = next(
            (
                v
                for v in (
                    ds.get("AcquisitionDateTime"),
                    ds.get("AcquisitionDate"),
                    ds.get("ContentDate"),
                    ds.get("StudyDate"),
                )
                if v
            ),
            None,
        )
        age = dicom_age_years(ds.get("PatientAge"))
        if np.isnan(age):
            birth, when = _parse_date(ds.get("PatientBirthDate")), _parse_date(acquired)
            if birth is not None and when is not None and when >= birth:
                age = (when - birth).days / _DAYS_PER_YEAR
        device = " ".join(
            str(ds.get(k, "") or "").strip() for k in ("Manufacturer", "ManufacturerModelName")
        ).strip()
        extra = {
            "multiplex_group": str(group.get("MultiplexGroupLabel", "") or "") or None,
            "sop_class_uid": str(ds.get("SOPClassUID", "") or "") or None,
            "filter_low_hz": _first_channel_value(group, "FilterLowFrequency"),
            "filter_high_hz": _first_channel_value(group, "FilterHighFrequency"),
            "notch_hz": _first_channel_value(group, "NotchFilterFrequency"),
        }
        return {
            "age": age,
            "sex": normalise_sex(ds.get("PatientSex")),
            "device": device or None,
            "site": str(ds.get("InstitutionName", "") or "").strip() or None,
            "ethnicity": str(ds.get("EthnicGroup", "") or "").strip() or None,
            "recording_date": _iso_datetime(acquired),
            "extra": to_json(extra),
        }


def _first_channel_value(group: Any, keyword: str) -> float | None:
    """A per-channel filter setting of the first channel (devices set them alike)."""
    channels = group.get("ChannelDefinitionSequence") or []
    if not channels or channels[0].get(keyword) is None:
        return None
    try:
        return float(channels[0].get(keyword))
    except (TypeError, ValueError):
        return None
