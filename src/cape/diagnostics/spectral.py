"""Band powers of stored signals: how identifiable cohorts are before any encoder.

The reference level for feature identifiability: if the stored, preprocessed
ECGs themselves tell cohorts apart through their spectra (device filters,
noise colour, mains residue), an encoder *could* learn the shortcut; whether
it did is the features' identifiability. No file I/O.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import welch

# Bands (Hz) chosen to separate what devices change: baseline wander, the ECG's own
# band, the low-pass region of monitor-grade filters, mains (50/60 Hz) and above.
DEFAULT_BANDS_HZ: tuple[tuple[float, float], ...] = (
    (0.3, 1.0),
    (1.0, 5.0),
    (5.0, 15.0),
    (15.0, 35.0),
    (35.0, 45.0),
    (45.0, 55.0),
    (55.0, 65.0),
    (65.0, 100.0),
    (100.0, 200.0),
)


def band_power_features(
    signals: np.ndarray,
    sampling_rate_hz: float,
    bands_hz: tuple[tuple[float, float], ...] = DEFAULT_BANDS_HZ,
    segment_samples: int = 512,
) -> np.ndarray:
    """Log mean Welch power per band, averaged over leads.

    Args:
        signals: ``(n, leads, samples)`` float, any unit (a unit change shifts all
            features by a constant).
        sampling_rate_hz: of ``signals``.
        bands_hz: ``(low, high)`` pairs; bands above Nyquist are dropped.
        segment_samples: Welch segment length.

    Returns:
        ``(n, n_bands)`` float64.

    Raises:
        ValueError: ``signals`` is not 3-D or no band lies below Nyquist.
    """
    signals = np.asarray(signals, dtype=np.float64)
    if signals.ndim != 3:
        raise ValueError(f"signals must be (n, leads, samples), got shape {signals.shape}")
    usable = [(lo, hi) for lo, hi in bands_hz if hi <= sampling_rate_hz / 2]
    if not usable:
        raise ValueError(f"no band below Nyquist ({sampling_rate_hz / 2} Hz)")
    freqs, power = welch(
        signals, fs=sampling_rate_hz, nperseg=min(segment_samples, signals.shape[-1]), axis=-1
    )
    power = power.mean(axis=1)  # over leads
    columns = [power[:, (freqs >= lo) & (freqs < hi)].mean(axis=1) for lo, hi in usable]
    return np.log(np.stack(columns, axis=1) + 1e-20)
