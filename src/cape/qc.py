"""Quality checks: what gets an ECG quarantined.

Two stages. *Raw* checks (:func:`check_record`, here) run on the source
signal before preprocessing: rate, length, NaNs, flat or saturated leads, age.
*Plausibility* checks (:mod:`cape.plausibility`) run after preprocessing, on
the 400 Hz slot that would be stored. Both take their thresholds from
:class:`QCConfig`.

Each check looks at one thing and returns ``None`` (pass) or a
``(Reason, detail)`` pair; ingest turns the pair into a
:class:`cape.record.Rejection`. :func:`check_record` runs them all in order
and returns the first failure. Signals are the eight store leads at the
source rate, in millivolts, valid samples first (callers slice centred
padding away, as for :func:`cape.preprocessing.preprocess`).

Thresholds live in :class:`QCConfig`; the defaults are deliberately loose:
they catch broken recordings (a disconnected electrode, an amplifier stuck at
its rail, NaNs from a failed export), not merely noisy ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cape.leads import STORE_LEADS
from cape.preprocessing import PreprocessingConfig
from cape.record import Reason

QCResult = tuple[Reason, str] | None

# Spellings that exports and de-identification tools use for "no patient id".
PLACEHOLDER_PATIENT_IDS = (
    "",
    "nan",
    "none",
    "null",
    "na",
    "n/a",
    "-",
    "?",
    "unknown",
    "missing",
    "removed",
    "redacted",
    "anonymous",
    "anonymized",
    "anonymised",
)


@dataclass(frozen=True)
class QCConfig:
    """Thresholds of the quality checks.

    Attributes:
        min_seconds: shortest valid signal (the network's 7 s crop; same default
            as :attr:`cape.preprocessing.PreprocessingConfig.min_seconds`).
        min_rate_hz, max_rate_hz: plausible sampling rates; outside them the
            rate in the file is taken to be wrong.
        flat_std_mv: a lead whose standard deviation is below this is flat
            (10 µV: a disconnected lead shows quantisation noise only; the
            quietest real leads are ten times larger).
        rail_mv: a lead that strays further than this from its median has hit
            the amplifier's rail or holds garbage (no cardiac signal reaches
            30 mV; int16 µV storage ends at 32.767 mV).
        clip_fraction: a lead is clipped when at least this fraction of its
            samples sit at exactly its maximum or its minimum value in runs of
            ``clip_min_run`` or more consecutive samples.
        clip_min_run: shortest run counted as a plateau. Requiring runs (not
            single samples) keeps a coarsely quantised R peak from counting.
        min_age_years, max_age_years: plausible ages (unknown ages pass).
        min_heart_rate_bpm, max_heart_rate_bpm: plausible heart rate measured on
            the stored slot (resting ECGs: 2nd-98th percentile 48-98 bpm, Mason
            2007; escape rhythms of complete heart block reach down to ~30,
            tachyarrhythmias up to ~250). A 500 Hz recording labelled 100 Hz
            shows a fifth of its rate.
        stretch_heart_rate_bpm, stretch_qrs_ms: a rhythm slower than the first
            *and* a measured QRS wider than the second (80 ms measured, about
            100 ms clinical) together look like time stretched by a sampling
            rate that is too low (500 Hz labelled 257 Hz: 70 bpm -> 36 bpm, QRS
            x 1.95). Sinus bradycardia below 40 bpm keeps its narrow QRS and
            passes; slow wide-complex escape rhythms (complete heart block,
            ~0.04 % of adults) do not: set ``stretch_heart_rate_bpm=0`` to keep them.
        stretch_qt_heart_rate_bpm, max_qtc_ms: a rhythm slower than the first
            *and* a QT whose Fridericia correction (QT / RR^(1/3), Fridericia
            1920) exceeds the second look stretched in time. A stretch by k
            multiplies the QT by k and its QTc by k^(2/3): 500 Hz labelled
            257 Hz turns a 100 bpm heart into 51 bpm with QTc x 1.56 (a normal
            410 ms becomes ~640), while rate and QRS width look like sinus
            bradycardia with a bundle branch block. A stretch only lowers the
            rate, hence the rate gate. 500 ms on this detector's scale (it reads
            QT 24-96 ms, median 33, short of the simulator's) is ~530 ms
            clinical. QTc > 500 ms marks a high risk of torsade (Drew et al.,
            Circulation 2010) and is rare (QTcF >= 500 ms in 0.4 % of acute
            medical admission ECGs, Heart 2016;102 Suppl 6:A109): drug-induced
            or congenital long QT. Those records, slower than the gate, are
            quarantined: raise ``max_qtc_ms`` (or set
            ``stretch_qt_heart_rate_bpm=0``) to keep them. Measured cost and
            catch: docs/data-contract.md.
        min_qrs_ms, max_qrs_ms: plausible QRS width as this detector measures it
            (median over beats of the span where the spatial velocity exceeds
            20 % of its peak; it reads ~20-30 ms shorter than a clinical QRS
            duration: simulated clean ECGs measure 35-153 ms). Adult
            QRS 69-109 ms, ULN 110 ms, bundle branch blocks >= 120 ms (AHA 2009);
            past 200 ms clinical (~180 measured) is no sinus or bundle branch
            beat.
        max_qrs_amplitude_mv: largest plausible QRS peak-to-peak in any lead
            (real LVH precordial QRS reaches ~5 mV; Sokolow-Lyon criterion
            SV1 + RV5 >= 3.5 mV). A x5 or x10 gain error lands above it.
        min_qrs_amplitude_mv: the largest lead's QRS must reach this (low
            voltage is < 0.5 mV in the limb and < 1 mV in the precordial leads;
            a largest lead under 0.3 mV is a gain error, e.g. µV read as mV / 10).
        placeholder_patient_ids: patient ids that mean "none" (compared
            case-insensitively after stripping); such records are quarantined
            as ``missing_patient_id``.
    """

    min_seconds: float = PreprocessingConfig.min_seconds
    min_rate_hz: float = 50.0
    max_rate_hz: float = 10_000.0
    flat_std_mv: float = 0.01
    rail_mv: float = 30.0
    clip_fraction: float = 0.02
    clip_min_run: int = 3
    min_age_years: float = 0.0
    max_age_years: float = 120.0
    min_heart_rate_bpm: float = 25.0
    max_heart_rate_bpm: float = 250.0
    stretch_heart_rate_bpm: float = 40.0
    stretch_qrs_ms: float = 80.0
    stretch_qt_heart_rate_bpm: float = 80.0
    max_qtc_ms: float = 500.0
    min_qrs_ms: float = 20.0
    max_qrs_ms: float = 180.0
    max_qrs_amplitude_mv: float = 6.0
    min_qrs_amplitude_mv: float = 0.3
    placeholder_patient_ids: tuple[str, ...] = PLACEHOLDER_PATIENT_IDS

    def __post_init__(self) -> None:
        # A list read back from header.json becomes the tuple again (hashable, comparable).
        object.__setattr__(self, "placeholder_patient_ids", tuple(self.placeholder_patient_ids))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the thresholds, for the store header (JSON types only)."""
        out = asdict(self)
        out["placeholder_patient_ids"] = list(self.placeholder_patient_ids)
        return out

    @classmethod
    def from_overrides(cls, overrides: dict[str, str]) -> QCConfig:
        """Defaults with ``name -> text`` overrides (the CLI's ``--qc NAME=VALUE``).

        Raises:
            ValueError: an unknown name or a value that is not a number.
        """
        known = {f for f in cls.__dataclass_fields__}
        values: dict[str, Any] = {}
        for name, text in overrides.items():
            if name not in known:
                raise ValueError(f"unknown QC setting {name!r}; known: {sorted(known)}")
            if name == "placeholder_patient_ids":
                values[name] = tuple(t.strip() for t in text.split(",") if t.strip())
            elif name == "clip_min_run":
                values[name] = int(text)
            else:
                values[name] = float(text)
        return cls(**values)

    def is_placeholder(self, patient_id: Any) -> bool:
        """True when ``patient_id`` is missing or one of the placeholder spellings."""
        if patient_id is None:
            return True
        text = str(patient_id).strip().lower()
        return text in {p.strip().lower() for p in self.placeholder_patient_ids}


def _lead_names(n_leads: int, lead_names: Sequence[str] | None) -> list[str]:
    if lead_names is not None:
        return list(lead_names)
    if n_leads == len(STORE_LEADS):
        return list(STORE_LEADS)
    return [f"lead {k}" for k in range(n_leads)]


def check_sampling_rate(sampling_rate_hz: Any, config: QCConfig | None = None) -> QCResult:
    """Unknown (None, non-numeric, non-finite, <= 0) or implausible sampling rate."""
    config = config or QCConfig()
    try:
        rate = float(sampling_rate_hz)
    except (TypeError, ValueError):
        return Reason.UNKNOWN_SAMPLING_RATE, f"sampling rate {sampling_rate_hz!r} is not a number"
    if not math.isfinite(rate) or rate <= 0:
        return Reason.UNKNOWN_SAMPLING_RATE, f"sampling rate {sampling_rate_hz!r} is not positive"
    if not config.min_rate_hz <= rate <= config.max_rate_hz:
        return (
            Reason.UNKNOWN_SAMPLING_RATE,
            f"sampling rate {rate:g} Hz is outside the plausible "
            f"{config.min_rate_hz:g}-{config.max_rate_hz:g} Hz",
        )
    return None


def check_length(
    n_valid_samples: int, sampling_rate_hz: float, config: QCConfig | None = None
) -> QCResult:
    """Fewer than ``min_seconds`` of valid signal (one sample of slack for rounding)."""
    config = config or QCConfig()
    needed = config.min_seconds * sampling_rate_hz
    if n_valid_samples < needed - 1:
        return (
            Reason.TOO_SHORT,
            f"{n_valid_samples} valid samples = {n_valid_samples / sampling_rate_hz:.2f} s "
            f"at {sampling_rate_hz:g} Hz, need {config.min_seconds:g} s",
        )
    return None


def check_finite(signal: np.ndarray, lead_names: Sequence[str] | None = None) -> QCResult:
    """NaN or infinite samples; the detail names the leads and counts."""
    bad = ~np.isfinite(signal)
    if not bad.any():
        return None
    names = _lead_names(signal.shape[0], lead_names)
    counts = bad.sum(axis=-1)
    parts = [f"{names[k]}: {int(c)}" for k, c in enumerate(counts) if c]
    return Reason.NON_FINITE, f"non-finite samples in {', '.join(parts)} of {signal.shape[-1]}"


def check_flat(
    signal: np.ndarray, config: QCConfig | None = None, lead_names: Sequence[str] | None = None
) -> QCResult:
    """Leads whose standard deviation is below ``flat_std_mv`` (disconnected or dead)."""
    config = config or QCConfig()
    std = signal.std(axis=-1)
    flat = np.flatnonzero(std < config.flat_std_mv)
    if flat.size == 0:
        return None
    names = _lead_names(signal.shape[0], lead_names)
    parts = [f"{names[k]} (std {std[k] * 1000:.2g} µV)" for k in flat]
    return (
        Reason.FLAT_LEAD,
        f"flat lead {', '.join(parts)}: below {config.flat_std_mv * 1000:g} µV",
    )


def _plateau_fraction(lead: np.ndarray, value: float, min_run: int) -> float:
    """Fraction of samples equal to ``value`` in runs of at least ``min_run``."""
    at_value = np.concatenate([[False], lead == value, [False]])
    edges = np.flatnonzero(np.diff(at_value.astype(np.int8)))
    run_lengths = edges[1::2] - edges[::2]
    return float(run_lengths[run_lengths >= min_run].sum()) / lead.size


def check_saturated(
    signal: np.ndarray, config: QCConfig | None = None, lead_names: Sequence[str] | None = None
) -> QCResult:
    """Leads beyond the rail or clipped (plateaus at the lead's own extreme values).

    Two signs of saturation, either is enough:

    * a sample further than ``rail_mv`` from the lead's median (the median, not
      zero, because unfiltered exports may carry an electrode offset that the
      high-pass removes);
    * at least ``clip_fraction`` of the samples sitting at exactly the lead's
      maximum (or minimum) in runs of ``clip_min_run`` samples or more: an
      amplifier or an export that clips holds the rail value for as long as
      the true signal lies beyond it, while a clean signal touches its extreme
      for a sample or two per peak.
    """
    config = config or QCConfig()
    names = _lead_names(signal.shape[0], lead_names)
    median = np.median(signal, axis=-1, keepdims=True)
    excursion = np.abs(signal - median).max(axis=-1)
    beyond = np.flatnonzero(excursion > config.rail_mv)
    if beyond.size:
        parts = [f"{names[k]} ({excursion[k]:.1f} mV)" for k in beyond]
        return (
            Reason.SATURATED,
            f"lead {', '.join(parts)} beyond the {config.rail_mv:g} mV rail from its median",
        )
    for k, lead in enumerate(signal):
        for label, value in (("maximum", lead.max()), ("minimum", lead.min())):
            fraction = _plateau_fraction(lead, value, config.clip_min_run)
            if fraction >= config.clip_fraction:
                return (
                    Reason.SATURATED,
                    f"lead {names[k]} clipped: {fraction:.1%} of samples at its {label} "
                    f"{value:.4g} mV in runs of >= {config.clip_min_run}",
                )
    return None


def check_age(age: Any, config: QCConfig | None = None) -> QCResult:
    """Known age below ``min_age_years`` or above ``max_age_years`` (unknown ages pass)."""
    config = config or QCConfig()
    try:
        value = float(age)
    except (TypeError, ValueError):
        return None
    if math.isnan(value):
        return None
    if not config.min_age_years <= value <= config.max_age_years:
        return (
            Reason.IMPLAUSIBLE_AGE,
            f"age {value:g} outside {config.min_age_years:g}-{config.max_age_years:g} years",
        )
    return None


def check_record(
    signal: np.ndarray,
    sampling_rate_hz: Any,
    valid_length: int | None = None,
    age: Any = None,
    config: QCConfig | None = None,
    lead_names: Sequence[str] | None = None,
) -> QCResult:
    """Run every check on one raw ECG and return the first failure, or ``None``.

    Order: sampling rate (without it no length means anything), length,
    non-finite samples (they would poison the statistics of the next checks),
    flat leads, saturation, then age (metadata last: the signal checks say
    more about the file).

    Args:
        signal: ``(leads, n_samples)`` float mV at the source rate (the eight
            store leads); samples after ``valid_length`` are ignored.
        sampling_rate_hz: source rate in Hz as the reader found it (may be None).
        valid_length: valid samples at the start; ``None`` = all.
        age: age in years, NaN/None if unknown.
        config: thresholds (defaults when ``None``).
        lead_names: names for the details (default: the store leads).

    Returns:
        ``(Reason, detail)`` of the first failed check, or ``None`` if all pass.

    Raises:
        ValueError: ``signal`` is not 2-D or ``valid_length`` is out of range.
    """
    config = config or QCConfig()
    array = np.asarray(signal)
    if array.ndim != 2:
        raise ValueError(f"signal must be (leads, samples), got shape {array.shape}")
    n_valid = array.shape[-1] if valid_length is None else int(valid_length)
    if not 0 <= n_valid <= array.shape[-1]:
        raise ValueError(f"valid_length {valid_length} outside [0, {array.shape[-1]}]")
    result = check_sampling_rate(sampling_rate_hz, config)
    if result is not None:
        return result
    result = check_length(n_valid, float(sampling_rate_hz), config)
    if result is not None:
        return result
    valid = array[:, :n_valid]
    return (
        check_finite(valid, lead_names)
        or check_flat(valid, config, lead_names)
        or check_saturated(valid, config, lead_names)
        or check_age(age, config)
    )
