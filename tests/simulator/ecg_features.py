"""Handcrafted ECG measurements for the simulator's tests (test helper, not CAPE code).

Deliberately simple, the way a cardiologist's ruler would work: R peaks on
lead II, a median beat, interval and amplitude statistics, noise spectra.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from cape.simulator.retest import median_beat, r_peaks

__all__ = ["median_beat", "r_peaks"]


def bandpass(x: np.ndarray, fs: float, low: float, high: float) -> np.ndarray:
    sos = signal.butter(2, [low, high], btype="bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x, axis=-1)


def heart_rate_bpm(lead_ii: np.ndarray, fs: float) -> float:
    return float(60.0 * fs / np.mean(np.diff(r_peaks(lead_ii, fs))))


def rr_cv(lead_ii: np.ndarray, fs: float) -> float:
    rr = np.diff(r_peaks(lead_ii, fs))
    return float(np.std(rr) / np.mean(rr))


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
