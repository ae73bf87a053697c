"""Device artefacts: filters against scipy, noise level, hum, ADC grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from cape.simulator.cohorts import DeviceSpec
from cape.simulator.devices import PAD_SECONDS, _noise_shape, apply_device, bandpass_sos, phasors


def _quiet(**settings: object) -> DeviceSpec:
    base: dict[str, object] = {
        "name": "test",
        "noise_uv": 0.0,
        "wander_mv": 0.0,
        "hum_uv": 0.0,
        "gain_jitter": 0.0,
        "adc_lsb_uv": 0.1,
    }
    return DeviceSpec(**{**base, **settings})


def test_phasors_match_complex_exponentials() -> None:
    freqs = np.array([[0.2, 50.0, 123.4]])
    got = phasors(freqs, 1234, 500.0, t0_s=0.7)
    t = 0.7 + np.arange(1234) / 500.0
    np.testing.assert_allclose(got, np.exp(2j * np.pi * freqs[..., None] * t), atol=2e-5)


def test_noise_shape_gives_unit_rms() -> None:
    n = 4000
    freqs = np.fft.rfftfreq(n, d=1 / 500)
    rng = np.random.default_rng(0)
    for colour in (0.0, 1.0, 2.0):
        coeffs = rng.standard_normal((200, freqs.size)) + 1j * rng.standard_normal(
            (200, freqs.size)
        )
        noise = np.fft.irfft(coeffs * _noise_shape(freqs, colour, n), n=n)
        assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0, rel=0.03)


def _periodic_input(fs: float, seconds: int, n: int = 2) -> np.ndarray:
    """Sines with whole cycles in the padded window, so circular filtering is the steady state."""
    total = round((seconds + 2 * PAD_SECONDS) * fs)
    t = np.arange(total) / fs
    period = total / fs
    waves = [0.25 * np.sin(2 * math.pi * k / period * t + k) for k in (3, 17, 600, 1300)]
    return np.broadcast_to(sum(waves), (n, 8, total)).copy()


@pytest.mark.parametrize("phase", ["zero", "causal"])
def test_device_filter_matches_scipy_in_steady_state(phase: str) -> None:
    device = _quiet(sampling_rate_hz=500, highpass_hz=0.5, lowpass_hz=40, filter_phase=phase)
    clean = _periodic_input(500.0, 10)
    recorded, gain = apply_device(clean, device, 50.0, np.ones(2), np.random.default_rng(0))
    np.testing.assert_allclose(gain, 1.0)
    sos = bandpass_sos(500.0, 0.5, 40.0)
    pad = round(PAD_SECONDS * 500)
    repeated = np.tile(clean[0, 0], 6)  # run the filter into steady state, keep the last period
    if phase == "zero":
        reference = signal.sosfiltfilt(sos, repeated)
    else:
        reference = signal.sosfilt(sos, repeated)
    reference = reference[-2 * clean.shape[-1] : -clean.shape[-1]][pad:-pad]
    np.testing.assert_allclose(recorded[0, 0], reference, atol=2e-3)


def test_output_lies_on_the_adc_grid_and_saturates() -> None:
    device = _quiet(adc_lsb_uv=4.88, noise_uv=20.0)
    clean = _periodic_input(500.0, 10)
    clean[0, 0] *= 2000.0  # ~1 V swings: far beyond the 16-bit range of 4.88 µV steps (+-160 mV)
    recorded, _ = apply_device(clean, device, 60.0, np.ones(2), np.random.default_rng(1))
    steps = recorded.astype(np.float64) / (4.88e-3)
    np.testing.assert_allclose(steps, np.rint(steps), atol=1e-3)
    assert np.abs(steps).max() <= 32767 + 1e-3
    assert np.isclose(np.abs(steps[0, 0]), 32767, atol=1e-3).mean() > 0.3
    assert np.abs(steps[1]).max() < 1000  # the other recording is untouched


def test_noise_level_and_mains_hum_appear_where_specified() -> None:
    fs = 500.0
    total = round((10 + 2 * PAD_SECONDS) * fs)
    silent = np.zeros((20, 8, total))
    white = _quiet(noise_uv=30.0, noise_colour=0.0, highpass_hz=0.05, lowpass_hz=200.0)
    recorded, _ = apply_device(silent, white, 50.0, np.ones(20), np.random.default_rng(2))
    # The 0.05-200 Hz band passes ~80 % of white noise power up to 250 Hz (zero-phase: |H|^2).
    rms_uv = 1000 * np.sqrt(np.mean(recorded.astype(np.float64) ** 2))
    assert 20.0 < rms_uv < 30.0
    humming = _quiet(hum_uv=50.0)
    recorded, _ = apply_device(silent, humming, 60.0, np.ones(20), np.random.default_rng(3))
    freqs, power = signal.welch(recorded[:, 0], fs=fs, nperseg=1000)
    spectrum = power.mean(axis=0)
    assert freqs[np.argmax(spectrum)] == pytest.approx(60.0, abs=0.5)
    assert spectrum[np.argmin(np.abs(freqs - 180))] > 10 * spectrum[np.argmin(np.abs(freqs - 120))]


def test_gain_error_scales_the_signal() -> None:
    device = _quiet(gain_error=0.05)
    clean = _periodic_input(500.0, 10)
    recorded, gain = apply_device(clean, device, 50.0, np.ones(2), np.random.default_rng(4))
    np.testing.assert_allclose(gain, 1.05)
    reference, _ = apply_device(clean, _quiet(), 50.0, np.ones(2), np.random.default_rng(4))
    np.testing.assert_allclose(
        recorded, 1.05 * reference, atol=1.2e-4
    )  # within one 0.1 µV ADC step
