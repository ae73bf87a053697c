"""Handcrafted ECG measurements for the simulator's tests (test helper, not CAPE code).

Deliberately simple, the way a cardiologist's ruler would work: R peaks on
lead II, a median beat, interval and amplitude statistics, noise spectra.
"""

from __future__ import annotations

import numpy as np
from scipy import signal


def bandpass(x: np.ndarray, fs: float, low: float, high: float) -> np.ndarray:
    sos = signal.butter(2, [low, high], btype="bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x, axis=-1)


def r_peaks(lead: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices of one lead with scipy's find_peaks on the 5-25 Hz envelope."""
    envelope = np.abs(bandpass(lead, fs, 5.0, 25.0))
    peaks, _ = signal.find_peaks(
        envelope, height=0.4 * np.percentile(envelope, 99.5), distance=int(0.3 * fs)
    )
    return peaks


def heart_rate_bpm(lead_ii: np.ndarray, fs: float) -> float:
    return float(60.0 * fs / np.mean(np.diff(r_peaks(lead_ii, fs))))


def rr_cv(lead_ii: np.ndarray, fs: float) -> float:
    rr = np.diff(r_peaks(lead_ii, fs))
    return float(np.std(rr) / np.mean(rr))


def median_beat(signals12: np.ndarray, fs: float) -> np.ndarray:
    """``(8, L)`` median beat of leads I, II, V1-V6 from -0.3 s to +0.5 s around R (0.5-40 Hz)."""
    leads = bandpass(signals12[[0, 1, 6, 7, 8, 9, 10, 11]], fs, 0.5, 40.0)
    pre, post = int(0.3 * fs), int(0.5 * fs)
    peaks = r_peaks(signals12[1], fs)
    peaks = peaks[(peaks > pre) & (peaks < signals12.shape[1] - post)]
    beat = np.median(np.stack([leads[:, p - pre : p + post] for p in peaks]), axis=0)
    return beat - beat[:, : int(0.05 * fs)].mean(axis=1, keepdims=True)


def interval_amplitude_features(signals12: np.ndarray, fs: float) -> np.ndarray:
    """Rate, RR variability, per-lead QRS/T/P/ST amplitudes, QRS width and T end."""
    beat = median_beat(signals12, fs)
    rr_ms = np.diff(r_peaks(signals12[1], fs)) / fs * 1000
    t = (np.arange(beat.shape[1]) - int(0.3 * fs)) / fs * 1000
    qrs, t_wave, p_wave, st = (
        (t > -60) & (t < 60),
        (t > 150) & (t < 450),
        (t > -280) & (t < -80),
        (t > 60) & (t < 100),
    )
    velocity = np.sqrt((np.diff(beat, axis=1) ** 2).sum(axis=0))
    around = (t[1:] > -120) & (t[1:] < 120)
    fast = np.flatnonzero(around & (velocity > 0.15 * velocity[around].max()))
    energy = (beat**2).sum(axis=0)
    late = (t > 150) & (t < 600)
    t_end = np.flatnonzero(late & (energy > 0.1 * energy[late].max()))
    return np.concatenate(
        [
            [rr_ms.mean(), np.log1p(np.sqrt(np.mean(np.diff(rr_ms) ** 2)))],
            beat[:, qrs].max(axis=1),
            beat[:, qrs].min(axis=1),
            beat[:, t_wave].max(axis=1),
            beat[:, t_wave].min(axis=1),
            beat[:, p_wave].max(axis=1),
            beat[:, st].mean(axis=1),
            [(fast[-1] - fast[0]) / fs * 1000, t[t_end[-1]]],
        ]
    )


NOISE_BANDS_HZ = (
    (0.05, 0.5),
    (0.5, 2),
    (2, 10),
    (10, 30),
    (30, 45),
    (45, 55),
    (55, 65),
    (65, 100),
    (100, 120),
)


def noise_spectrum_features(signals12: np.ndarray, fs: float) -> np.ndarray:
    """Log power of leads I and II in fixed bands (Welch), averaged over the two leads."""
    freqs, power = signal.welch(signals12[:2], fs=fs, nperseg=int(4 * fs), axis=-1)
    power = power.mean(axis=0)
    return np.log([power[(freqs >= lo) & (freqs < hi)].mean() + 1e-12 for lo, hi in NOISE_BANDS_HZ])
