import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from cape.diagnostics import band_power_features, cohort_identifiability


def test_band_powers_match_a_direct_computation():
    rng = np.random.default_rng(0)
    t = np.arange(2800) / 400
    x = np.sin(2 * np.pi * 10 * t)[None, None, :] * np.ones((1, 8, 1))
    features = band_power_features(x + 1e-3 * rng.normal(size=x.shape), 400.0)
    assert features.shape == (1, 9)
    assert np.argmax(features[0]) == 2  # the 5-15 Hz band holds the 10 Hz sine


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
