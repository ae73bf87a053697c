"""Band-pass, mains notch and resampling to 400 Hz, and fitting ECGs into the store's 10 s slot.

Every cohort enters the store through the same chain (DESIGN.md, "The method"):

1. resample the source rate to 400 Hz with a polyphase FIR
   (:func:`scipy.signal.resample_poly`, rational ``up/down``);
2. zero-phase Butterworth band-pass 0.5-100 Hz and zero-phase notch at the
   cohort's mains frequency, run together as one cascade of second-order
   sections through :func:`scipy.signal.sosfiltfilt`, at 400 Hz.

Why resample first and filter at 400 Hz, rather than the other way round:

* **One filter for every cohort.** A bilinear-transform Butterworth responds
  slightly differently at every sampling rate; IDB exists to stop device
  artefacts from becoming a cohort fingerprint, so every cohort gets the
  *same* digital filter, designed at 400 Hz.
* **No filter above Nyquist.** At a 100 Hz source (PTB-XL's low-rate copy) a
  100 Hz low-pass is above the 50 Hz Nyquist limit and a 50 Hz notch sits on
  it; at 400 Hz both are valid. After upsampling, the band above the source's
  Nyquist frequency is empty (the resampler's anti-imaging FIR removes the
  images), so that frequency becomes the effective low-pass edge;
  :class:`FilterPlan` records it, and such sources get a sharper FIR.
* **No aliasing when downsampling**: ``resample_poly`` low-passes at 200 Hz
  before decimating, and the 100 Hz low-pass that follows removes what folds
  back from just above 200 Hz.
* **Cheaper**: 500 and 1000 Hz sources are filtered on 4000 samples per lead.

``padtype="line"`` makes the resampler continue the line through the first and
last samples beyond the edges instead of zeros, so an offset does not ring there.

Filters: ``butter(filter_order, [highpass_hz, lowpass_hz], btype="band")`` has
``filter_order`` poles per band edge (default 2: -40 dB/decade per edge).
Forward-backward filtering squares the magnitude response (effective order
doubled: -80 dB/decade, 0.5 and 100 Hz become -6 dB points) and cancels the
phase. The notch is ``iirnotch`` with quality ``notch_quality`` (bandwidth
mains / Q: 1.7 Hz at 50 Hz, Q = 30). ``sosfiltfilt`` extends each edge by
``filter_pad_seconds`` (odd reflection): SciPy's default of a few dozen samples
leaves edge transients of the 0.5 Hz high-pass five times larger than a 1 s pad.

Computation runs in float32 after each lead's mean is removed: within 0.25 µV
of float64 (the store keeps 1 µV steps). The speed gain over float64 is small
(1.05x, range 0.99-1.12, in ``python benchmarks/bench_preprocessing.py``; see
docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from scipy import signal as sps

from cape.errors import CapeError

logger = logging.getLogger(__name__)

SUPPORTED_MAINS_HZ = (50.0, 60.0)
_MAX_RATIO_DENOMINATOR = 1000  # up/down up to 1000 keep resampling exact for any real device rate
_NYQUIST_MARGIN = 0.98  # a frequency within 2% of Nyquist cannot be filtered (or is aliased)
# Resampler FIR (Kaiser-window sinc): SciPy's default is 10 * max(up, down) taps per side
# and beta 5 (~50 dB, a transition ~15% of the new band wide). When the source rate is
# below twice the low-pass, that FIR *is* the low-pass of the chain, so it gets four times
# the taps and beta 8 (~80 dB, transition ~3% of the band): a 45 Hz component of a 100 Hz
# source would otherwise leave a -29 dB image at 55 Hz.
_DEFAULT_FIR = (10, 5.0)
_SHARP_FIR = (40, 8.0)


class PreprocessingSettingError(CapeError, ValueError):
    """A preprocessing setting (config value or mains frequency) is out of range."""


@dataclass(frozen=True)
class PreprocessingConfig:
    """Preprocessing parameters; recorded in the store header via :meth:`to_dict`.

    Attributes:
        target_rate_hz: output sampling rate (the store's 400 Hz).
        highpass_hz: band-pass lower edge (baseline wander removal).
        lowpass_hz: band-pass upper edge (muscle noise); must be below half
            of ``target_rate_hz``.
        filter_order: Butterworth poles per band edge (band-pass order is twice
            this; forward-backward filtering doubles it again in magnitude).
        notch: apply the mains notch when the cohort's mains frequency is known.
        notch_quality: notch quality factor Q (bandwidth = mains / Q).
        filter_pad_seconds: length of the odd extension ``sosfiltfilt`` adds at
            each edge; signals must be longer than this after resampling.
        slot_seconds: length of the store's fixed slot (10 s = 4000 samples).
        min_seconds: shortest valid signal kept (the network's 7 s crop).
    """

    target_rate_hz: float = 400.0
    highpass_hz: float = 0.5
    lowpass_hz: float = 100.0
    filter_order: int = 2
    notch: bool = True
    notch_quality: float = 30.0
    filter_pad_seconds: float = 1.0
    slot_seconds: float = 10.0
    min_seconds: float = 7.0

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> PreprocessingSettingError:
            return PreprocessingSettingError(
                f"preprocessing setting {name}={getattr(self, name)!r}: {why}"
            )

        for name in ("target_rate_hz", "highpass_hz", "lowpass_hz", "notch_quality"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise bad(name, "must be a positive number")
        if self.lowpass_hz <= self.highpass_hz:
            raise bad("lowpass_hz", f"must be above highpass_hz={self.highpass_hz}")
        if self.lowpass_hz >= _NYQUIST_MARGIN * self.target_rate_hz / 2:
            raise bad(
                "lowpass_hz", f"must be below Nyquist of target_rate_hz={self.target_rate_hz}"
            )
        if not (isinstance(self.filter_order, int) and 1 <= self.filter_order <= 8):
            raise bad("filter_order", "must be an integer from 1 to 8")
        for name in ("filter_pad_seconds", "slot_seconds", "min_seconds"):
            value = getattr(self, name)
            # bool is an int; a string or None would fail the comparisons below with a TypeError
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad(name, "must be a number")
        if not (self.filter_pad_seconds >= 0 and math.isfinite(self.filter_pad_seconds)):
            raise bad("filter_pad_seconds", "must be a non-negative number")
        if not (self.slot_seconds > 0 and math.isfinite(self.slot_seconds)):
            raise bad("slot_seconds", "must be a positive number")
        if not (0 < self.min_seconds <= self.slot_seconds):
            raise bad("min_seconds", f"must be in (0, slot_seconds={self.slot_seconds}]")

    @property
    def slot_samples(self) -> int:
        """Samples in the store's slot at the target rate (4000)."""
        return round(self.slot_seconds * self.target_rate_hz)

    @property
    def pad_samples(self) -> int:
        """Odd-extension length of ``sosfiltfilt`` at the target rate."""
        return round(self.filter_pad_seconds * self.target_rate_hz)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every parameter, for the store's JSON header."""
        return asdict(self)


@dataclass(frozen=True)
class FilterPlan:
    """What :func:`preprocess` does for one source rate and mains frequency.

    Attributes:
        source_rate_hz: sampling rate of the input.
        output_rate_hz: ``source_rate_hz * up / down`` (the target rate, or
            within 1e-6 of it for rates without a small rational ratio).
        up, down: resampling factors (``up == down == 1``: no resampling).
        highpass_hz, lowpass_hz: band edges of the Butterworth at the output rate.
        effective_lowpass_hz: the upper band edge the output really has:
            ``lowpass_hz``, or the source's Nyquist frequency when that is lower.
        notch_hz: notch frequency, or ``None`` when no notch is applied.
        resampler_half_taps: taps per side of the resampler's FIR, per ``max(up, down)``.
        resampler_kaiser_beta: Kaiser window parameter of that FIR.
        notes: plain-language remarks on edge cases (low source rate, mains at
            or above the source's Nyquist frequency); ingest logs them once per cohort.
    """

    source_rate_hz: float
    output_rate_hz: float
    up: int
    down: int
    highpass_hz: float
    lowpass_hz: float
    effective_lowpass_hz: float
    notch_hz: float | None
    resampler_half_taps: int = _DEFAULT_FIR[0]
    resampler_kaiser_beta: float = _DEFAULT_FIR[1]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for the store's JSON header (per cohort)."""
        out = asdict(self)
        out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True)
class PreprocessedBatch:
    """Output of :func:`preprocess`.

    Attributes:
        signals: float32 mV at ``plan.output_rate_hz``, ``(batch, leads, n_out)``
            (or ``(leads, n_out)`` when the input had no batch axis); zeros
            after each record's valid length.
        valid_lengths: int64 ``(batch,)``, valid output samples per record.
        plan: the filters and resampling that were applied.
    """

    signals: np.ndarray
    valid_lengths: np.ndarray
    plan: FilterPlan


def _check_rate(sampling_rate_hz: float) -> float:
    try:
        rate = float(sampling_rate_hz)
    except (TypeError, ValueError):
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"sampling_rate_hz must be a positive number, got {sampling_rate_hz!r}")
    return rate


def _check_mains(mains_hz: float | None) -> float | None:
    if mains_hz is None:
        return None
    try:
        mains = float(mains_hz)
    except (TypeError, ValueError):
        mains = math.nan
    if mains not in SUPPORTED_MAINS_HZ:
        raise PreprocessingSettingError(
            f"mains_hz={mains_hz!r}: mains frequency must be 50, 60 or None (no notch)"
        )
    return mains


def plan_filters(
    sampling_rate_hz: float,
    mains_hz: float | None,
    config: PreprocessingConfig | None = None,
) -> FilterPlan:
    """Decide resampling factors and filter edges for one source rate.

    Args:
        sampling_rate_hz: source sampling rate in Hz.
        mains_hz: the cohort's mains frequency (50 or 60), or ``None`` for no notch.
        config: preprocessing parameters (defaults when ``None``).

    Returns:
        The :class:`FilterPlan`; its ``notes`` explain any edge case.

    Raises:
        ValueError: ``sampling_rate_hz`` is not a positive number.
        PreprocessingSettingError: ``mains_hz`` is not 50, 60 or ``None``.
    """
    config = config or PreprocessingConfig()
    rate = _check_rate(sampling_rate_hz)
    mains = _check_mains(mains_hz)
    ratio = (Fraction(config.target_rate_hz) / Fraction(rate)).limit_denominator(
        _MAX_RATIO_DENOMINATOR
    )
    up, down = ratio.numerator, ratio.denominator  # already coprime
    output_rate = rate * up / down
    notes: list[str] = []
    if abs(output_rate - config.target_rate_hz) > 1e-6 * config.target_rate_hz:
        notes.append(
            f"{rate:g} Hz has no ratio to {config.target_rate_hz:g} Hz with denominator "
            f"<= {_MAX_RATIO_DENOMINATOR}: resampled by {up}/{down} to {output_rate:.6f} Hz"
        )
    source_nyquist = rate / 2
    effective_lowpass = config.lowpass_hz
    half_taps, beta = _DEFAULT_FIR
    if source_nyquist < config.lowpass_hz:
        effective_lowpass = source_nyquist
        half_taps, beta = _SHARP_FIR
        notes.append(
            f"source Nyquist {source_nyquist:g} Hz is below the {config.lowpass_hz:g} Hz "
            f"low-pass: the band ends at {source_nyquist:g} Hz (resampler's anti-imaging filter)"
        )
    notch_hz = mains if (config.notch and mains is not None) else None
    if mains is not None and mains >= _NYQUIST_MARGIN * source_nyquist:
        # The notch runs at the output rate, where it is always valid, so it is kept:
        # it removes whatever the resampler passes at mains. Hum above the source's
        # Nyquist frequency, though, was folded into the band when the source was
        # sampled, and no filter can take it out now.
        alias = abs(rate * round(mains / rate) - mains)
        if abs(alias - mains) <= (1 - _NYQUIST_MARGIN) * mains:
            notes.append(
                f"mains {mains:g} Hz is at the source Nyquist {source_nyquist:g} Hz: hum shows "
                f"as the alternating-sign component, which the notch at {output_rate:g} Hz removes"
            )
        else:
            notes.append(
                f"mains {mains:g} Hz is above the source Nyquist {source_nyquist:g} Hz: hum in "
                f"the source, if any, is aliased to {alias:g} Hz and cannot be notched"
            )
    for note in notes:
        logger.debug("preprocessing %g Hz: %s", rate, note)
    return FilterPlan(
        source_rate_hz=rate,
        output_rate_hz=output_rate,
        up=up,
        down=down,
        highpass_hz=config.highpass_hz,
        lowpass_hz=config.lowpass_hz,
        effective_lowpass_hz=effective_lowpass,
        notch_hz=notch_hz,
        resampler_half_taps=half_taps,
        resampler_kaiser_beta=beta,
        notes=tuple(notes),
    )


def design_filter(plan: FilterPlan, config: PreprocessingConfig | None = None) -> np.ndarray:
    """Second-order sections of the band-pass, then the notch, at the output rate.

    Args:
        plan: from :func:`plan_filters`.
        config: supplies ``filter_order`` and ``notch_quality``.

    Returns:
        float64 ``(n_sections, 6)`` SOS array for :func:`scipy.signal.sosfiltfilt`.
    """
    config = config or PreprocessingConfig()
    fs = plan.output_rate_hz
    sos = sps.butter(
        config.filter_order, [plan.highpass_hz, plan.lowpass_hz], btype="band", fs=fs, output="sos"
    )
    if plan.notch_hz is not None:
        b, a = sps.iirnotch(plan.notch_hz, config.notch_quality, fs=fs)
        sos = np.vstack([sos, sps.tf2sos(b, a)])
    return np.asarray(sos, dtype=np.float64)


def design_resampler(plan: FilterPlan) -> np.ndarray | None:
    """FIR of the polyphase resampler (anti-alias / anti-imaging low-pass).

    Args:
        plan: from :func:`plan_filters`.

    Returns:
        float64 odd-length coefficients for :func:`scipy.signal.resample_poly`'s
        ``window`` argument (cut-off at the lower of the two Nyquist frequencies),
        or ``None`` when no resampling is needed.
    """
    if plan.up == plan.down:
        return None
    max_rate = max(plan.up, plan.down)
    n_taps = 2 * plan.resampler_half_taps * max_rate + 1
    return np.asarray(
        sps.firwin(n_taps, 1.0 / max_rate, window=("kaiser", plan.resampler_kaiser_beta))
    )


def _output_length(n_samples: int, up: int, down: int) -> int:
    # resample_poly returns ceil(n * up / down) samples.
    return -(-n_samples * up // down)


def _process_block(
    block: np.ndarray,
    plan: FilterPlan,
    sos: np.ndarray,
    fir: np.ndarray | None,
    pad_samples: int,
) -> np.ndarray:
    """Centre, resample and filter a ``(k, leads, n)`` block of equal-length records."""
    means = block.mean(axis=-1, keepdims=True)
    if not np.isfinite(means).all():
        # A NaN or inf anywhere in a lead makes its mean non-finite: a free check.
        raise ValueError("signals hold non-finite samples; run QC (cape.qc) first")
    # Removing each lead's mean changes nothing in exact arithmetic (the band-pass
    # blocks DC and the resampler's line padding follows any offset), but it keeps an
    # electrode offset of hundreds of mV from eating float32 precision, and from
    # showing up as the small phase-to-phase gain ripple of the polyphase resampler.
    block = np.subtract(block, means, dtype=np.float32)
    if fir is not None:
        block = sps.resample_poly(
            block, plan.up, plan.down, axis=-1, window=fir.astype(np.float32), padtype="line"
        )
    n_out = block.shape[-1]
    if n_out <= pad_samples:
        raise ValueError(
            f"a signal of {n_out} samples at {plan.output_rate_hz:g} Hz is too short to filter: "
            f"the filters need more than {pad_samples} samples (filter_pad_seconds)"
        )
    out = sps.sosfiltfilt(sos.astype(block.dtype), block, axis=-1, padlen=pad_samples)
    return np.asarray(out, dtype=np.float32)


def preprocess(
    signals: np.ndarray,
    sampling_rate_hz: float,
    mains_hz: float | None,
    config: PreprocessingConfig | None = None,
    valid_length: int | np.ndarray | None = None,
) -> PreprocessedBatch:
    """Resample a batch of ECGs to 400 Hz and band-pass and notch them (zero phase).

    The whole batch goes through each SciPy call at once (``axis=-1``). Records
    whose valid length is shorter than the array are processed per distinct
    valid length on their valid part only, so padding zeros next to the signal
    cause no filter transients. See the module docstring for the order of
    operations and the filter design.

    Args:
        signals: ``(batch, leads, n_samples)`` or ``(leads, n_samples)`` float,
            millivolts, at ``sampling_rate_hz``. Valid samples come first.
        sampling_rate_hz: source sampling rate in Hz.
        mains_hz: mains frequency of the cohort (50 or 60); ``None`` = no notch.
        config: preprocessing parameters (defaults when ``None``).
        valid_length: valid samples per record at the source rate: an int for
            all records, a ``(batch,)`` array, or ``None`` (all samples valid).

    Returns:
        :class:`PreprocessedBatch` with float32 mV signals of
        ``ceil(n_samples * up / down)`` samples (4000 for 10 s), same rank as
        the input, and the valid length of each record in output samples.

    Raises:
        ValueError: bad shape, non-finite samples, a rate that is not a positive
            number, valid lengths out of range, or a signal too short to filter.
        PreprocessingSettingError: ``mains_hz`` is not 50, 60 or ``None``.
    """
    config = config or PreprocessingConfig()
    plan = plan_filters(sampling_rate_hz, mains_hz, config)
    array = np.asarray(signals)
    if array.ndim not in (2, 3) or array.shape[-1] == 0:
        raise ValueError(
            f"signals must be (batch, leads, samples) or (leads, samples), got shape {array.shape}"
        )
    had_batch_axis = array.ndim == 3
    batch = array if had_batch_axis else array[np.newaxis]
    if not np.issubdtype(batch.dtype, np.floating):
        batch = batch.astype(np.float64)
    n_records, _, n_samples = batch.shape

    if valid_length is None:
        lengths = np.full(n_records, n_samples, dtype=np.int64)
    else:
        lengths = np.broadcast_to(np.asarray(valid_length, dtype=np.int64), (n_records,))
        if (lengths < 1).any() or (lengths > n_samples).any():
            raise ValueError(f"valid_length must lie in [1, {n_samples}], got {lengths.tolist()}")

    sos = design_filter(plan, config)
    fir = design_resampler(plan)
    n_out = _output_length(n_samples, plan.up, plan.down)
    out_lengths = np.array([_output_length(int(n), plan.up, plan.down) for n in lengths])
    distinct = np.unique(lengths)
    if distinct.size == 1 and distinct[0] == n_samples:
        out = _process_block(batch, plan, sos, fir, config.pad_samples)
    else:
        out = np.zeros((n_records, batch.shape[1], n_out), dtype=np.float32)
        for length in distinct:
            rows = np.flatnonzero(lengths == length)
            block = _process_block(batch[rows, :, :length], plan, sos, fir, config.pad_samples)
            out[rows, :, : block.shape[-1]] = block
    return PreprocessedBatch(
        signals=out if had_batch_axis else out[0],
        valid_lengths=out_lengths.astype(np.int64),
        plan=plan,
    )
