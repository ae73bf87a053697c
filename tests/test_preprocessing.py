"""Tests for cape.preprocessing: filters, resampling, slot fitting, int16 conversion."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy import signal as sps

from cape.errors import CapeError
from cape.preprocessing import (
    PreprocessingConfig,
    PreprocessingSettingError,
    plan_filters,
    preprocess,
)
from cape.store.slot import fit_to_slot, to_int16_microvolts, would_clip_int16

OUT_HZ = 400.0


def tone(frequency_hz: float, rate_hz: float, seconds: float = 10.0, phase: float = 0.3):
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    return np.sin(2 * np.pi * frequency_hz * t + phase)


def amplitude_at(x: np.ndarray, frequency_hz: float, rate_hz: float, margin_s: float = 2.0):
    """Least-squares amplitude of one frequency in the central part (edges hold transients)."""
    start = round(margin_s * rate_hz)
    t = np.arange(x.shape[-1])[start:-start] / rate_hz
    design = np.stack(
        [
            np.sin(2 * np.pi * frequency_hz * t),
            np.cos(2 * np.pi * frequency_hz * t),
            np.ones_like(t),
        ],
        axis=1,
    )
    coef, *_ = np.linalg.lstsq(design, x[start:-start], rcond=None)
    return float(np.hypot(coef[0], coef[1]))


def db(ratio: float) -> float:
    return 20 * math.log10(ratio)


def leads8(x: np.ndarray) -> np.ndarray:
    """A (1, 8, n) batch with the same signal on every lead."""
    return np.tile(x, (1, 8, 1))


def realistic_batch(n_records: int, rate_hz: float, seconds: float = 10.0, seed: int = 0):
    """Sums of random sines (0.2-40 Hz), baseline offset, wander, hum and white noise."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate_hz)
    t = np.arange(n) / rate_hz
    out = np.empty((n_records, 8, n))
    for i in range(n_records):
        for lead in range(8):
            freqs = rng.uniform(0.2, 40.0, size=12)
            amps = rng.uniform(0.02, 0.4, size=12)
            phases = rng.uniform(0, 2 * np.pi, size=12)
            x = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
            x += rng.uniform(-1, 1) + 0.3 * np.sin(2 * np.pi * 0.15 * t)
            x += 0.05 * np.sin(2 * np.pi * 50 * t) + 0.01 * rng.standard_normal(n)
            out[i, lead] = x
    return out


# ---- filters -------------------------------------------------------------------------------


@pytest.mark.parametrize("rate_hz", [500.0, 1000.0, 250.0, 100.0])
def test_10hz_sine_passes_within_2_percent(rate_hz):
    out = preprocess(leads8(tone(10, rate_hz)), rate_hz, mains_hz=50)
    amplitude = amplitude_at(out.signals[0, 3], 10, OUT_HZ)
    assert amplitude == pytest.approx(1.0, abs=0.02)


def test_baseline_drift_removed_by_more_than_20_db():
    drift = tone(0.1, 500.0)
    out = preprocess(leads8(drift), 500.0, mains_hz=50).signals[0, 0]
    central = out[800:-800]
    # Peak (not only the 0.1 Hz component): nothing of the drift may leak anywhere.
    assert db(np.abs(central).max() / 1.0) < -20


def test_150hz_removed_at_500hz_input():
    out = preprocess(leads8(tone(150, 500.0)), 500.0, mains_hz=None).signals[0, 0]
    assert db(amplitude_at(out, 150, OUT_HZ)) < -20


@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
def test_mains_hum_removed_by_notch(mains_hz):
    hum = tone(mains_hz, 500.0)
    notched = preprocess(leads8(hum), 500.0, mains_hz=mains_hz).signals[0, 0]
    assert db(amplitude_at(notched, mains_hz, OUT_HZ)) < -20
    # Without the notch the hum is in the pass band: the notch is what removes it.
    kept = preprocess(leads8(hum), 500.0, mains_hz=None).signals[0, 0]
    assert amplitude_at(kept, mains_hz, OUT_HZ) > 0.9


def test_notch_is_narrow():
    # The 50 Hz notch leaves 40 and 60 Hz essentially untouched (compared with no notch,
    # since the 100 Hz low-pass alone already takes 6% off at 60 Hz).
    for frequency in (40.0, 60.0):
        x = leads8(tone(frequency, 500.0))
        notched = preprocess(x, 500.0, mains_hz=50).signals[0, 0]
        plain = preprocess(x, 500.0, mains_hz=None).signals[0, 0]
        ratio = amplitude_at(notched, frequency, OUT_HZ) / amplitude_at(plain, frequency, OUT_HZ)
        assert ratio > 0.97


def test_notch_switch_in_config():
    hum = leads8(tone(50, 500.0))
    out = preprocess(hum, 500.0, mains_hz=50, config=PreprocessingConfig(notch=False))
    assert out.plan.notch_hz is None
    assert amplitude_at(out.signals[0, 0], 50, OUT_HZ) > 0.9


# ---- resampling ----------------------------------------------------------------------------


@pytest.mark.parametrize("rate_hz", [500.0, 1000.0, 250.0, 100.0])
def test_resampling_preserves_5hz_amplitude_and_phase(rate_hz):
    out = preprocess(leads8(tone(5, rate_hz, phase=0.7)), rate_hz, mains_hz=50).signals[0, 5]
    expected = tone(5, OUT_HZ, phase=0.7)
    assert out.shape == expected.shape
    central = slice(800, -800)
    # A phase error of 1 ms at 5 Hz would already give 0.03 here.
    np.testing.assert_allclose(out[central], expected[central], atol=5e-3)


def test_matches_naive_per_record_scipy_chain():
    """Same result, on the central part, as separate float64 SciPy calls per record."""
    batch = realistic_batch(3, 500.0, seed=1)
    out = preprocess(batch, 500.0, mains_hz=50).signals
    sos = sps.butter(2, [0.5, 100.0], btype="band", fs=OUT_HZ, output="sos")
    b, a = sps.iirnotch(50.0, 30.0, fs=OUT_HZ)
    for record, got in zip(batch, out, strict=True):
        x = sps.resample_poly(record, 4, 5, axis=-1, padtype="line")
        x = sps.sosfiltfilt(sos, x, axis=-1, padlen=400)
        x = sps.filtfilt(b, a, x, axis=-1, padlen=400)
        # 1 µV is the store's resolution; a wrong edge, order or Q differs by far more.
        np.testing.assert_allclose(got[:, 400:-400], x[:, 400:-400], atol=1e-3)


def test_electrode_offset_does_not_change_output():
    batch = realistic_batch(2, 500.0, seed=5)
    offset = np.array([300.0, -250.0, 0.0, 12.0, -40.0, 1.0, 90.0, -5.0])[None, :, None]
    plain = preprocess(batch, 500.0, mains_hz=50).signals
    shifted = preprocess(batch + offset, 500.0, mains_hz=50).signals
    np.testing.assert_allclose(shifted, plain, atol=1e-3)


def test_100hz_input_does_not_alias():
    # 10 Hz plus a 45 Hz tone near the source's Nyquist frequency: after upsampling the
    # spectrum above 50 Hz must stay empty (no images at 55, 145, 155 Hz, ...).
    x = tone(10, 100.0) + 0.5 * tone(45, 100.0, phase=1.1)
    out = preprocess(leads8(x), 100.0, mains_hz=50)
    assert out.plan.effective_lowpass_hz == 50.0
    assert any("Nyquist" in note for note in out.plan.notes)
    y = out.signals[0, 0, 800:-800] * np.hanning(2400)
    spectrum = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(y.size, 1 / OUT_HZ)
    assert spectrum[freqs > 55].max() < 1e-3 * spectrum.max()
    assert amplitude_at(out.signals[0, 0], 10, OUT_HZ) == pytest.approx(1.0, abs=0.02)


def test_downsampling_does_not_alias():
    # 230 Hz at a 1000 Hz source is above the new 200 Hz Nyquist frequency: without an
    # anti-alias filter it would fold to 170 Hz.
    out = preprocess(leads8(tone(230, 1000.0)), 1000.0, mains_hz=None).signals[0, 0]
    assert db(amplitude_at(out, 170, OUT_HZ)) < -40
    assert db(np.abs(out[800:-800]).max()) < -40


def test_100hz_input_nyquist_hum_removed_and_60hz_noted():
    # 50 Hz hum sampled at 100 Hz is an alternating-sign sequence; the notch at 400 Hz removes it.
    n = np.arange(1000)
    x = tone(10, 100.0) + 0.3 * (-1.0) ** n
    out = preprocess(leads8(x), 100.0, mains_hz=50).signals[0, 0]
    assert amplitude_at(out, 50, OUT_HZ) < 0.03
    plan = plan_filters(100.0, 60, PreprocessingConfig())
    assert any("aliased to 40 Hz" in note for note in plan.notes)


# ---- shapes, batches, valid lengths --------------------------------------------------------


def test_output_shape_dtype_and_valid_length():
    batch = realistic_batch(2, 500.0, seconds=10.0)
    out = preprocess(batch, 500.0, mains_hz=60)
    assert out.signals.shape == (2, 8, 4000)
    assert out.signals.dtype == np.float32
    assert out.valid_lengths.tolist() == [4000, 4000]
    single = preprocess(batch[0], 500.0, mains_hz=60)
    assert single.signals.shape == (8, 4000)
    seven = preprocess(realistic_batch(1, 1000.0, seconds=7.0), 1000.0, mains_hz=50)
    assert seven.signals.shape == (1, 8, 2800)
    assert seven.valid_lengths.tolist() == [2800]


def test_batch_equals_per_record():
    batch = realistic_batch(4, 500.0, seed=2)
    together = preprocess(batch, 500.0, mains_hz=50).signals
    for i in range(batch.shape[0]):
        alone = preprocess(batch[i], 500.0, mains_hz=50).signals
        np.testing.assert_allclose(together[i], alone, rtol=0, atol=1e-6)


def test_valid_length_filters_only_valid_part():
    batch = realistic_batch(3, 500.0, seed=3)
    lengths = np.array([5000, 4000, 3500])
    padded = batch.copy()
    for i, n in enumerate(lengths):
        padded[i, :, n:] = 0.0
    out = preprocess(padded, 500.0, mains_hz=50, valid_length=lengths)
    expected_lengths = [4000, 3200, 2800]
    assert out.valid_lengths.tolist() == expected_lengths
    for i, (n, m) in enumerate(zip(lengths, expected_lengths, strict=True)):
        trimmed = preprocess(batch[i, :, :n], 500.0, mains_hz=50).signals
        np.testing.assert_allclose(out.signals[i, :, :m], trimmed, atol=1e-6)
        assert not out.signals[i, :, m:].any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mains_hz": 55}, "mains"),
        ({"sampling_rate_hz": 0}, "sampling_rate_hz"),
        ({"sampling_rate_hz": float("nan")}, "sampling_rate_hz"),
        ({"signals": np.zeros((1, 8, 300))}, "too short"),
        ({"signals": np.zeros(5000)}, "shape"),
        ({"valid_length": 6000}, "valid_length"),
    ],
)
def test_bad_input_raises_value_error(kwargs, match):
    args = {"signals": np.zeros((1, 8, 5000)), "sampling_rate_hz": 500.0, "mains_hz": 50}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        preprocess(**args)


def test_non_finite_input_raises():
    x = np.zeros((1, 8, 5000))
    x[0, 2, 10] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        preprocess(x, 500.0, mains_hz=50)


def test_config_validation_and_header_dict():
    config = PreprocessingConfig()
    as_dict = json.loads(json.dumps(config.to_dict()))
    assert PreprocessingConfig(**as_dict) == config
    assert config.slot_samples == 4000
    for bad in ({"lowpass_hz": 199.0}, {"highpass_hz": 150.0}, {"filter_order": 0}):
        with pytest.raises(PreprocessingSettingError, match=next(iter(bad))) as info:
            PreprocessingConfig(**bad)
        assert isinstance(info.value, CapeError)


def test_plan_records_ratio():
    assert (plan_filters(500, 50).up, plan_filters(500, 50).down) == (4, 5)
    assert (plan_filters(1000, 50).up, plan_filters(1000, 50).down) == (2, 5)
    assert (plan_filters(400, 60).up, plan_filters(400, 60).down) == (1, 1)
    assert plan_filters(500, None).notch_hz is None
    assert plan_filters(500, 50).notes == ()


# ---- slot and int16 ------------------------------------------------------------------------


def test_fit_to_slot_crops_centre_and_pads_end():
    n = 5000
    ramp = np.broadcast_to(np.arange(n, dtype=np.float32), (3, 8, n)).copy()
    lengths = np.array([5000, 4000, 2900])
    out, kept = fit_to_slot(ramp, lengths, slot_samples=4000)
    assert out.shape == (3, 8, 4000)
    assert out.dtype == np.float32
    assert kept.tolist() == [4000, 4000, 2900]
    np.testing.assert_array_equal(out[0, 0], np.arange(500, 4500))  # central 10 s of 12.5 s
    np.testing.assert_array_equal(out[1, 4], np.arange(4000))
    np.testing.assert_array_equal(out[2, 7, :2900], np.arange(2900))
    assert not out[2, :, 2900:].any()


def test_fit_to_slot_rejects_bad_lengths():
    with pytest.raises(ValueError, match="valid_lengths"):
        fit_to_slot(np.zeros((1, 8, 100)), np.array([101]))


def test_int16_microvolts_rounding_and_clip_flag():
    rng = np.random.default_rng(4)
    x = rng.normal(0, 2.0, size=(3, 8, 100))
    x[1, 3, 7] = 33.0  # beyond +32.767 mV
    x[2, 0, 0] = -32.767  # exactly at the limit: fits
    microvolts, clip = to_int16_microvolts(x)
    assert microvolts.dtype == np.int16
    assert clip.tolist() == [False, True, False]
    np.testing.assert_array_equal(microvolts[0], np.round(x[0] * 1000).astype(np.int16))
    assert microvolts[1, 3, 7] == 32767
    assert would_clip_int16(x[1]).tolist() == [True]
    with pytest.raises(ValueError, match="non-finite"):
        to_int16_microvolts(np.array([[np.inf]]))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("slot_seconds", math.inf, "slot_seconds=inf: must be a positive number"),
        ("slot_seconds", 0.0, "slot_seconds=0.0: must be a positive number"),
        ("min_seconds", "2", "min_seconds='2': must be a number"),
        ("filter_pad_seconds", None, "filter_pad_seconds=None: must be a number"),
        ("slot_seconds", True, "slot_seconds=True: must be a number"),
    ],
)
def test_config_refuses_infinite_or_non_numeric_durations(field, value, message):
    """An infinite slot used to pass and fail later in ``slot_samples`` (OverflowError); a
    string or None raised a bare TypeError from a comparison instead of naming the setting."""
    with pytest.raises(PreprocessingSettingError, match=re.escape(message)):
        PreprocessingConfig(**{field: value})
