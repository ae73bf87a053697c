import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from cape.diagnostics import band_power_features, cohort_identifiability
from cape.diagnostics.spectral import DEFAULT_BANDS_HZ


def naive_welch_density(x: np.ndarray, fs: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch (1967) by hand: half-overlapping periodic-Hann segments, mean removed,
    one-sided density ``2 |FFT(w x)|^2 / (fs sum w^2)`` (DC and Nyquist not doubled),
    averaged over segments. ``x``: ``(samples,)``."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(nperseg) / nperseg)
    step = nperseg // 2
    starts = range(0, x.size - nperseg + 1, step)
    periodograms = []
    for start in starts:
        segment = x[start : start + nperseg]
        spectrum = np.abs(np.fft.rfft(window * (segment - segment.mean()))) ** 2
        spectrum /= fs * (window**2).sum()
        spectrum[1:-1] *= 2.0  # nperseg even: the last bin is Nyquist
        periodograms.append(spectrum)
    return np.fft.rfftfreq(nperseg, 1 / fs), np.mean(periodograms, axis=0)


def test_band_powers_match_a_direct_computation():
    """Each feature is log(mean over the band's bins [lo, hi) of the lead-averaged
    Welch density), from a by-hand Welch; float64 throughout, so relative 1e-10.

    Leads differ (a 10 Hz sine on half of them, 50 Hz mains on the others,
    noise on all), so averaging logs instead of powers, the power spectrum
    instead of the density, or a band edge on the wrong side would show; the old
    test checked only the shape and the argmax."""
    rng = np.random.default_rng(0)
    fs, n = 400.0, 2800
    t = np.arange(n) / fs
    x = 0.05 * rng.normal(size=(2, 8, n))
    x[:, :4] += np.sin(2 * np.pi * 10 * t)
    x[:, 4:] += 0.3 * np.sin(2 * np.pi * 50 * t)
    features = band_power_features(x, fs)
    assert features.shape == (2, 9)
    for i in range(2):
        freqs, _ = naive_welch_density(x[i, 0], fs, 512)
        power = np.mean([naive_welch_density(x[i, lead], fs, 512)[1] for lead in range(8)], axis=0)
        expected = [
            np.log(power[(freqs >= lo) & (freqs < hi)].mean()) for lo, hi in DEFAULT_BANDS_HZ
        ]
        np.testing.assert_allclose(features[i], expected, rtol=1e-10)
    assert np.argmax(features[0]) == 2  # the 5-15 Hz band holds the 10 Hz sine


def test_white_noise_has_the_textbook_flat_density():
    """White noise of variance s² has one-sided density 2 s² / fs in every band.

    8 leads x 40,000 samples: each band averages >= 1 bin over ~155 half-overlapping
    Hann segments and 8 leads, >= ~1,000 roughly independent chi²(2)/2 values, so
    the relative SE is <= ~3 %; the tolerance of 15 % is 5 SE. The draw is seeded,
    so the outcome does not depend on the machine.

    One exception, also by hand: the first band's only bin (0.78 Hz) is bin 1 of
    the 512-sample periodic Hann window, whose transform there is W(1) = -N/4
    while sum w² = 3N/8. Removing each segment's mean (Welch's constant detrend)
    takes |W(1)|² s² / N = N s² / 16 from E|X(1)|² = 3 N s² / 8: a factor 5/6.
    """
    rng = np.random.default_rng(4)
    fs, sigma = 400.0, 0.7
    x = sigma * rng.normal(size=(1, 8, 40_000))
    features = band_power_features(x, fs)
    expected = np.full(9, 2 * sigma**2 / fs)
    expected[0] *= 5 / 6
    np.testing.assert_allclose(np.exp(features[0]), expected, rtol=0.15)
    assert np.exp(features[0, 0]) < np.exp(features[0, 1:]).min()  # the 5/6 shows


def test_devices_with_other_noise_colour_are_identifiable():
    rng = np.random.default_rng(1)
    white = rng.normal(size=(60, 8, 2800))
    lowpassed = sosfiltfilt(
        butter(4, 40, fs=400, output="sos"), rng.normal(size=(60, 8, 2800)), axis=-1
    )
    features = band_power_features(np.concatenate([white, lowpassed]), 400.0)
    labels = np.array(["a"] * 60 + ["b"] * 60)
    assert cohort_identifiability(features, labels, n_bootstrap=50).accuracy > 0.95
    with pytest.raises(ValueError, match="Nyquist"):
        band_power_features(white[:2], 0.5)
