"""What readers hand to ingest: one ECG with its ids, metadata and units, or a rejection.

Every reader yields :class:`ECGRecord` for inputs it could read and
:class:`Rejection` for inputs it could not (unreadable file, missing patient
id, ...). Ingest adds its own rejections after quality control. Nothing is
dropped silently: each rejection ends up in the store's quarantine table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


class Reason(str, Enum):
    """Why an input was quarantined. Values are what the quarantine table holds."""

    UNREADABLE = "unreadable"  # file missing, truncated or not in the expected format
    NON_FINITE = "non_finite"  # NaN or inf samples
    FLAT_LEAD = "flat_lead"  # a required lead (almost) constant
    SATURATED = "saturated"  # a lead clipped at its rails, or outside the int16 µV range
    TOO_SHORT = "too_short"  # shorter than the 7 s the network needs
    UNKNOWN_SAMPLING_RATE = "unknown_sampling_rate"
    MISSING_LEADS = "missing_leads"  # I/II/V1-V6 absent and not derivable
    DUPLICATE_ID = "duplicate_id"  # record_id already stored for this cohort
    MISSING_PATIENT_ID = "missing_patient_id"
    IMPLAUSIBLE_AGE = "implausible_age"
    BAD_METADATA = "bad_metadata"  # a metadata row that cannot be parsed
    TOO_LONG = "too_long"  # longer than a reader loads in one piece (see wfdb_io caps)
    OUTSIDE_SOURCE = "outside_source"  # a referenced file resolves outside the source folder
    AMBIGUOUS_LEADS = "ambiguous_leads"  # two channels map to the same lead
    IMPLAUSIBLE_RATE = "implausible_rate"  # heart rate outside the plausible range
    IMPLAUSIBLE_QRS = "implausible_qrs"  # QRS duration outside the plausible range
    IMPLAUSIBLE_AMPLITUDE = "implausible_amplitude"  # QRS amplitude too large or too small
    DUPLICATE_SIGNAL = "duplicate_signal"  # the very same stored signal as an earlier ECG
    PROCESSING_ERROR = "processing_error"  # an unexpected exception in lead mapping/QC/filters


@dataclass
class ECGRecord:
    """One ECG as read from its source, before preprocessing.

    Attributes:
        record_id: unique within the cohort (PTB-XL ``ecg_id``, CODE ``exam_id``,
            file stem, ...), always a string.
        patient_id: the patient the ECG belongs to, as a string; ``None`` if the
            source has none (ingest then quarantines the record).
        cohort: cohort name given at ingest.
        signal: ``(n_leads, n_samples)`` float array, rows follow ``lead_names``.
        sampling_rate_hz: samples per second of ``signal``; ``None`` if unknown.
        lead_names: lead names as written in the source (aliases are resolved later).
        units: unit of ``signal`` (``"mV"``, ``"uV"``, ``"V"``).
        source_file: path of the file the signal came from (for provenance and errors).
        valid_length: number of leading-or-centred samples that are real signal
            when the source pads records (CODE-15%); ``None`` = all samples valid.
        valid_start: first valid sample when ``valid_length`` is set.
        metadata: labels, see :data:`METADATA_FIELDS`.
    """

    record_id: str
    patient_id: str | None
    cohort: str
    signal: np.ndarray
    sampling_rate_hz: float | None
    lead_names: list[str]
    units: str
    source_file: str
    valid_length: int | None = None
    valid_start: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rejection:
    """An input that could not become a stored ECG, and why."""

    cohort: str
    source_file: str
    reason: Reason
    detail: str
    record_id: str | None = None
    patient_id: str | None = None


# Metadata keys readers fill when the source has them (all optional).
# They become manifest columns of the same name.
METADATA_FIELDS: dict[str, str] = {
    "age": "float, years; NaN if unknown. Top-coded ages are set to the code's lower bound",
    "age_topcoded": "bool, True if the source only says 'at least this old' (PTB-XL 300 = >= 90)",
    "sex": "'M' or 'F' (None if unknown)",
    "device": "str, recording device / cart model",
    "site": "str, recording site",
    "ethnicity": "str",
    "recording_date": "str, ISO date or datetime as in the source",
    "diagnoses": "list[str], the source's own diagnostic codes that are present",
    "superclasses": "list[str], PTB-XL-style superclasses (NORM, MI, STTC, CD, HYP)",
    "subclasses": "list[str], PTB-XL-style diagnostic subclasses",
    "scp_codes": "str, JSON dict of SCP code -> likelihood (PTB-XL)",
    "strat_fold": "int, PTB-XL stratified fold 1-10",
    "extra": "str, JSON dict of any other source columns worth keeping",
}


def clean_age(value: Any) -> float:
    """Age as float years, NaN when missing or not a number."""
    try:
        age = float(value)
    except (TypeError, ValueError):
        return math.nan
    return age if math.isfinite(age) else math.nan


def normalise_sex(value: Any) -> str | None:
    """Map the many spellings of sex to ``'M'``/``'F'`` (None when unknown).

    Accepts ``M/F``, ``male/female``, booleans ``is_male`` style (True = male)
    are *not* handled here: readers convert those explicitly.
    """
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    key = str(value).strip().upper()
    if key in {"M", "MALE", "MAN"}:
        return "M"
    if key in {"F", "FEMALE", "WOMAN", "W"}:
        return "F"
    return None
