"""Tests for cape.qc: each check fires on a crafted signal; clean ECGs pass them all."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cape.plausibility import check_plausibility, measure_beats
from cape.qc import (
    QCConfig,
    check_age,
    check_finite,
    check_flat,
    check_record,
    check_sampling_rate,
    check_saturated,
)
from cape.record import Reason

RATE_HZ = 500.0


def clean_ecg(
    seconds: float = 10.0,
    rate_hz: float = RATE_HZ,
    seed: int = 0,
    noise_mv: float = 0.01,
    lsb_mv: float | None = None,
    heart_rate_bpm: float = 72.0,
    t_mv: float = 0.3,
) -> np.ndarray:
    """Eight leads of a crude ECG: Gaussian P, QRS and T waves, baseline wander and noise.

    The T wave peaks 300 ms after the R peak, whatever the rate.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    beats = np.arange(0.3, seconds, 60.0 / heart_rate_bpm)
    out = np.empty((8, t.size))
    for lead in range(8):
        p, r, s, tw = rng.uniform(0.05, 0.2), rng.uniform(0.3, 2.0), rng.uniform(-0.8, 0), t_mv
        x = 0.2 * np.sin(2 * np.pi * 0.2 * t + lead) + rng.uniform(-0.5, 0.5)
        for beat in beats:
            x += p * np.exp(-(((t - beat + 0.16) / 0.025) ** 2))
            x += r * np.exp(-(((t - beat) / 0.01) ** 2))
            x += s * np.exp(-(((t - beat - 0.03) / 0.01) ** 2))
            x += tw * np.exp(-(((t - beat - 0.3) / 0.05) ** 2))
        out[lead] = x + noise_mv * rng.standard_normal(t.size)
    if lsb_mv is not None:
        out = np.round(out / lsb_mv) * lsb_mv
    return out


def sum_of_sines(seconds: float = 10.0, rate_hz: float = RATE_HZ, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    freqs = rng.uniform(0.5, 40, size=(8, 10, 1))
    amps = rng.uniform(0.05, 0.5, size=(8, 10, 1))
    x = (amps * np.sin(2 * np.pi * freqs * t + rng.uniform(0, 6, size=(8, 10, 1)))).sum(1)
    return x + 0.02 * rng.standard_normal(x.shape)


@pytest.mark.parametrize(
    "signal",
    [
        clean_ecg(),
        clean_ecg(lsb_mv=0.00488, seed=3),  # CODE-15%-like quantisation
        clean_ecg(noise_mv=0.0, lsb_mv=0.01, seed=4),  # identical beats, coarse steps
        clean_ecg(rate_hz=100.0, lsb_mv=0.001, seed=5),
        sum_of_sines(),
    ],
)
def test_clean_signals_pass_every_check(signal):
    rate = RATE_HZ if signal.shape[1] == 5000 else 100.0
    assert check_record(signal, rate, valid_length=None, age=55.0) is None


# ---- sampling rate, length, age ------------------------------------------------------------


@pytest.mark.parametrize("rate", [None, 0, -500, math.nan, math.inf, "fast", 20.0, 20_000.0])
def test_unknown_or_implausible_sampling_rate(rate):
    result = check_sampling_rate(rate)
    assert result is not None and result[0] is Reason.UNKNOWN_SAMPLING_RATE
    assert check_record(clean_ecg(), rate)[0] is Reason.UNKNOWN_SAMPLING_RATE


@pytest.mark.parametrize("rate", [50.0, 100, 257.0, 500.0, 10_000.0])
def test_plausible_sampling_rates_pass(rate):
    assert check_sampling_rate(rate) is None


def test_too_short():
    six_seconds = clean_ecg(seconds=6.0)
    reason, detail = check_record(six_seconds, RATE_HZ)
    assert reason is Reason.TOO_SHORT
    assert "6.00 s" in detail
    assert check_record(clean_ecg(seconds=7.0), RATE_HZ) is None
    # A 10 s array with 6 s of valid signal (zero padding after it) is too short too.
    padded = clean_ecg()
    padded[:, 3000:] = 0.0
    assert check_record(padded, RATE_HZ, valid_length=3000)[0] is Reason.TOO_SHORT


def test_padding_after_valid_length_is_ignored():
    signal = clean_ecg()
    signal[:, 4000:] = np.nan  # padding is not signal: QC looks at the valid part only
    assert check_record(signal, RATE_HZ, valid_length=4000) is None
    with pytest.raises(ValueError, match="valid_length"):
        check_record(signal, RATE_HZ, valid_length=6000)


@pytest.mark.parametrize(
    ("age", "bad"),
    [
        (-1, True),
        (121, True),
        (0, False),
        (90, False),
        (None, False),
        (math.nan, False),
        ("n/a", False),
    ],
)
def test_implausible_age(age, bad):
    result = check_age(age)
    assert (result is not None and result[0] is Reason.IMPLAUSIBLE_AGE) == bad
    assert (check_record(clean_ecg(), RATE_HZ, age=age) is not None) == bad


# ---- signal checks -------------------------------------------------------------------------


def test_non_finite_names_leads_and_counts():
    signal = clean_ecg()
    signal[1, [5, 50, 500]] = np.nan
    signal[6, 7] = np.inf
    reason, detail = check_record(signal, RATE_HZ)
    assert reason is Reason.NON_FINITE
    assert "II: 3" in detail and "V5: 1" in detail
    assert check_finite(clean_ecg()) is None


def test_flat_lead():
    signal = clean_ecg()
    rng = np.random.default_rng(7)
    signal[4] = 0.3 + 0.002 * rng.standard_normal(signal.shape[1])  # electrode off: noise only
    reason, detail = check_record(signal, RATE_HZ)
    assert reason is Reason.FLAT_LEAD
    assert "V3" in detail
    # The threshold is the config's: a 2 µV noise floor passes when it is lowered.
    assert check_flat(signal, QCConfig(flat_std_mv=0.001)) is None


def test_constant_lead_is_flat_not_saturated():
    signal = clean_ecg()
    signal[0] = 1.5
    assert check_record(signal, RATE_HZ)[0] is Reason.FLAT_LEAD


def test_clipped_lead():
    signal = clean_ecg(seed=8)
    lead = signal[3]
    rail = np.quantile(lead, 0.9)
    signal[3] = np.minimum(lead, rail)  # the top 10% of samples sit on the rail
    reason, detail = check_record(signal, RATE_HZ)
    assert reason is Reason.SATURATED
    assert "V2" in detail and "maximum" in detail


def test_clipped_at_minimum():
    signal = clean_ecg(seed=9)
    signal[7] = np.maximum(signal[7], np.quantile(signal[7], 0.05))
    reason, detail = check_saturated(signal)
    assert reason is Reason.SATURATED
    assert "V6" in detail and "minimum" in detail


def test_clip_needs_runs_not_isolated_samples():
    # 5% of samples at the maximum, but each isolated: not a plateau, not clipping.
    signal = clean_ecg(seed=10)
    top = signal[2].max() + 1.0
    signal[2, ::20] = top
    assert check_saturated(signal) is None
    # The same count of samples in runs of 5 is clipping.
    signal = clean_ecg(seed=10)
    starts = np.arange(0, signal.shape[1] - 5, 100)
    for start in starts:
        signal[2, start : start + 5] = top
    assert check_saturated(signal)[0] is Reason.SATURATED


def test_beyond_rail():
    signal = clean_ecg()
    signal[5, 2500:2510] += 45.0  # a 45 mV excursion is no cardiac signal
    reason, detail = check_record(signal, RATE_HZ)
    assert reason is Reason.SATURATED
    assert "V4" in detail and "rail" in detail
    # A large electrode offset alone is not saturation: the median follows it.
    offset = clean_ecg() + 200.0
    assert check_record(offset, RATE_HZ) is None


def test_order_of_checks():
    signal = clean_ecg(seconds=6.0)
    signal[0, 3] = np.nan
    signal[1] = 0.0
    # The rate comes first, then the length, then the samples.
    assert check_record(signal, None)[0] is Reason.UNKNOWN_SAMPLING_RATE
    assert check_record(signal, RATE_HZ)[0] is Reason.TOO_SHORT
    long_signal = clean_ecg()
    long_signal[0, 3] = np.nan
    long_signal[1] = 0.0
    assert check_record(long_signal, RATE_HZ, age=-5)[0] is Reason.NON_FINITE


def test_config_round_trip_and_lead_names():
    config = QCConfig(rail_mv=20.0)
    assert QCConfig(**config.to_dict()) == config
    signal = clean_ecg()[:3]
    signal[2] = 0.0
    reason, detail = check_record(signal, RATE_HZ, lead_names=["X", "Y", "Z"])
    assert reason is Reason.FLAT_LEAD and "Z" in detail


# --------------------------------------------------------------------------- plausibility


def _slot(signal_mv: np.ndarray, rate_hz: float = RATE_HZ) -> tuple[np.ndarray, np.ndarray]:
    """The store's 400 Hz slot of a raw 8-lead signal, as ingest checks it."""
    from cape.preprocessing import PreprocessingConfig, preprocess
    from cape.store.slot import fit_to_slot

    result = preprocess(signal_mv[None], rate_hz, 50.0, PreprocessingConfig())
    return fit_to_slot(result.signals, result.valid_lengths, 4000)


@pytest.mark.parametrize("seed", range(4))
def test_beats_of_a_clean_ecg_match_its_construction(seed):
    # clean_ecg beats every 60/72 s; its QRS is a few Gaussians ~50 ms wide.
    slots, valid = _slot(clean_ecg(seed=seed))
    features = measure_beats(slots, valid, 400.0)
    assert features.heart_rate_bpm[0] == pytest.approx(72.0, abs=1.0)
    assert features.n_beats[0] == pytest.approx(12, abs=1)  # 10 s less the 250 ms edges
    assert 20.0 <= features.qrs_ms[0] <= 120.0
    reference = slots[0][:, :, None]  # naive amplitude: peak-to-peak around each beat
    assert np.nanmax(features.qrs_amplitude_mv[0]) <= float(np.ptp(reference, axis=1).max())
    assert check_plausibility(features, 0) is None


def test_amplitude_scales_with_gain_and_timing_does_not():
    slots, valid = _slot(clean_ecg())
    one = measure_beats(slots, valid, 400.0)
    ten = measure_beats(10.0 * slots, valid, 400.0)
    np.testing.assert_allclose(ten.qrs_amplitude_mv, 10.0 * one.qrs_amplitude_mv, rtol=1e-6)
    assert ten.heart_rate_bpm[0] == one.heart_rate_bpm[0]
    assert ten.qrs_ms[0] == one.qrs_ms[0]
    assert check_plausibility(ten, 0)[0] is Reason.IMPLAUSIBLE_AMPLITUDE
    tenth = measure_beats(0.05 * slots, valid, 400.0)
    reason, detail = check_plausibility(tenth, 0)
    assert reason is Reason.IMPLAUSIBLE_AMPLITUDE and "below" in detail


def test_a_rate_labelled_five_times_too_low_is_implausible():
    signal = clean_ecg(seconds=10.0)
    slots, valid = _slot(signal, rate_hz=RATE_HZ / 5)  # 10 s read as 50 s: 72 -> 14 bpm
    features = measure_beats(slots, valid, 400.0)
    assert features.heart_rate_bpm[0] == pytest.approx(72.0 / 5, abs=3.0)
    assert check_plausibility(features, 0)[0] is Reason.IMPLAUSIBLE_RATE


def test_plausibility_thresholds_are_configurable():
    slots, valid = _slot(clean_ecg())
    features = measure_beats(slots, valid, 400.0)
    strict = QCConfig(max_heart_rate_bpm=60.0)
    assert check_plausibility(features, 0, strict)[0] is Reason.IMPLAUSIBLE_RATE
    config = QCConfig.from_overrides({"max_qrs_amplitude_mv": "0.1", "min_qrs_amplitude_mv": "0"})
    assert check_plausibility(features, 0, config)[0] is Reason.IMPLAUSIBLE_AMPLITUDE
    with pytest.raises(ValueError, match="unknown QC setting"):
        QCConfig.from_overrides({"no_such": "1"})


def test_no_beats_is_an_implausible_rate_not_an_error():
    flat_ish = np.random.default_rng(0).normal(0, 0.05, size=(1, 8, 4000))
    features = measure_beats(flat_ish, [4000], 400.0)
    assert check_plausibility(features, 0) is not None


# A Gaussian T wave exp(-(dt / 50 ms)^2) falls to 30 % of its peak 55 ms after it
# (50 ms * sqrt(ln(1 / 0.3))); the QRS onset is ~20 ms before the R peak, the T
# peak 300 ms after it: QT ~ 20 + 300 + 55 = 375 ms.
KNOWN_QT_MS = 375.0


@pytest.mark.parametrize("seed", range(3))
def test_qt_of_a_known_synthetic_ecg(seed):
    slots, valid = _slot(clean_ecg(seed=seed))
    features = measure_beats(slots, valid, 400.0)
    assert features.qt_ms[0] == pytest.approx(KNOWN_QT_MS, abs=15.0)


def test_qt_scales_with_a_time_stretch():
    signal = clean_ecg(heart_rate_bpm=100.0)
    one = measure_beats(*_slot(signal), 400.0)
    stretched = measure_beats(*_slot(signal, rate_hz=257.0), 400.0)  # 500 Hz labelled 257 Hz
    assert stretched.heart_rate_bpm[0] == pytest.approx(100.0 * 257 / 500, abs=1.5)
    assert stretched.qt_ms[0] == pytest.approx(one.qt_ms[0] * 500 / 257, rel=0.05)


def test_a_time_stretch_at_100_bpm_is_caught_by_its_qt():
    # 100 bpm shown as 51 bpm: no rate or QRS rule fires, the QT (~730 ms) does.
    signal = clean_ecg(heart_rate_bpm=100.0)
    stretched = measure_beats(*_slot(signal, rate_hz=257.0), 400.0)
    reason, detail = check_plausibility(stretched, 0)
    assert reason is Reason.IMPLAUSIBLE_RATE and "QTc Fridericia" in detail
    assert check_plausibility(stretched, 0, QCConfig(stretch_qt_heart_rate_bpm=0.0)) is None
    assert check_plausibility(stretched, 0, QCConfig.from_overrides({"max_qtc_ms": "800"})) is None
    # The clean recording, read at its true rate, passes.
    assert check_plausibility(measure_beats(*_slot(signal), 400.0), 0) is None


def _bbb_bradycardia(seconds: float = 10.0, rate_hz: float = RATE_HZ) -> np.ndarray:
    """Eight leads of a bundle branch block at 48 bpm: a broad R and a late R' (QRS
    ~150 ms), a discordant T wave, QT ~480 ms (QTc Fridericia ~450 ms)."""
    rng = np.random.default_rng(7)
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    out = np.zeros((8, t.size))
    for lead in range(8):
        r, r2 = rng.uniform(0.4, 1.2), rng.uniform(0.3, 1.0)
        for beat in np.arange(0.4, seconds, 60.0 / 48.0):
            out[lead] += 0.1 * np.exp(-(((t - beat + 0.2) / 0.03) ** 2))
            out[lead] += r * np.exp(-(((t - beat) / 0.025) ** 2))
            out[lead] += r2 * np.exp(-(((t - beat - 0.05) / 0.03) ** 2))
            out[lead] -= 0.35 * np.exp(-(((t - beat - 0.36) / 0.06) ** 2))
        out[lead] += 0.01 * rng.standard_normal(t.size)
    return out


def test_bundle_branch_block_with_sinus_bradycardia_is_not_rejected():
    # Slow and wide like a stretched recording, but its QT is a real one.
    features = measure_beats(*_slot(_bbb_bradycardia()), 400.0)
    assert features.heart_rate_bpm[0] == pytest.approx(48.0, abs=1.0)
    assert features.qrs_ms[0] >= 80.0  # wide on the detector's scale
    assert features.qt_ms[0] < 520.0
    assert check_plausibility(features, 0) is None
    # Labelled 257 Hz (a 2x stretch), the same heart shows 25 bpm: the rate rule.
    stretched = measure_beats(*_slot(_bbb_bradycardia(), rate_hz=257.0), 400.0)
    assert check_plausibility(stretched, 0)[0] is Reason.IMPLAUSIBLE_RATE


def test_no_t_wave_gives_no_qt_and_no_rejection():
    features = measure_beats(*_slot(clean_ecg(heart_rate_bpm=60.0, t_mv=0.0)), 400.0)
    assert np.isnan(features.qt_ms[0])
    assert check_plausibility(features, 0) is None


@pytest.mark.parametrize(
    ("patient_id", "placeholder"),
    [(None, True), ("", True), (" NA ", True), ("Removed", True), ("nan", True), ("007", False)],
)
def test_placeholder_patient_ids(patient_id, placeholder):
    assert QCConfig().is_placeholder(patient_id) is placeholder
