"""Plausibility checks after preprocessing: signals that are clean but no heart makes.

A wrong header gives a signal that passes every raw check: a mislabelled
sampling rate stretches time (heart rate, QRS width and QT scale with it), a
wrong gain scales amplitude. A cheap, robust beat detector (:func:`measure_beats`)
measures heart rate, QRS width, QT and per-lead QRS amplitude on the 400 Hz slot
that would be stored, vectorised over a batch; :func:`check_plausibility`
compares them with the thresholds of :class:`cape.qc.QCConfig`. Thresholds,
their sources and the measured false-rejection rate: docs/data-contract.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, find_peaks, sosfiltfilt

from cape.leads import STORE_LEADS
from cape.qc import QCConfig, QCResult
from cape.record import Reason


@dataclass(frozen=True)
class BeatFeatures:
    """What :func:`measure_beats` finds in a batch of ECGs.

    Attributes:
        heart_rate_bpm: ``(batch,)`` 60 / median RR (beats found / duration
            when fewer than two beats).
        qrs_ms: ``(batch,)`` QRS width of the median beat (NaN without beats).
        qrs_amplitude_mv: ``(batch, leads)`` QRS peak-to-peak of the median beat.
        n_beats: ``(batch,)`` beats detected.
        qt_ms: ``(batch,)`` QT interval of the long median beat, QRS onset to
            T-wave end (NaN without a measurable T wave); see :func:`_median_qt`.
    """

    heart_rate_bpm: np.ndarray
    qrs_ms: np.ndarray
    qrs_amplitude_mv: np.ndarray
    n_beats: np.ndarray
    qt_ms: np.ndarray


def measure_beats(
    signals_mv: np.ndarray, valid_lengths: Sequence[int] | np.ndarray, sampling_rate_hz: float
) -> BeatFeatures:
    """Heart rate, QRS width and QRS amplitude per lead, by a cheap robust detector.

    QRS complexes are the peaks of an energy envelope: the leads band-passed to
    8-30 Hz (where QRS energy lies and P/T waves mostly do not; Pan & Tompkins
    1985 use 5-15 Hz), squared, summed over leads and smoothed over 80 ms;
    ``scipy.signal.find_peaks`` keeps peaks above 30 % of the envelope's 99th
    percentile at least 240 ms apart (250 bpm), away from the 250 ms edges where
    filters settle. A median beat over ±200 ms windows gives the QRS amplitude
    per lead (peak-to-peak within ±80 ms); the QRS width is the median over
    beats of the span where the spatial velocity (sum over leads of the absolute
    derivative, smoothed over 10 ms) exceeds 20 % of its peak. The QT comes from
    a second, RR-long median beat (:func:`_median_qt`). Cost per 10 s 8-lead
    ECG at 400 Hz: 2.7 ms of CPU without the QT, 4.9 ms with it
    (``python benchmarks/bench_qc.py``; docs/benchmarks.md).

    Args:
        signals_mv: ``(batch, leads, n)`` preprocessed mV, valid samples first.
        valid_lengths: ``(batch,)`` valid samples per record.
        sampling_rate_hz: the signals' rate.

    Returns:
        :class:`BeatFeatures`.
    """
    x = np.asarray(signals_mv, dtype=np.float64)
    batch, n_leads, _ = x.shape
    fs = float(sampling_rate_hz)
    sos = butter(2, [8.0, 30.0], btype="band", fs=fs, output="sos")
    band = sosfiltfilt(sos, x, axis=-1)
    envelope = uniform_filter1d(
        np.einsum("bln,bln->bn", band, band), max(int(0.08 * fs), 1), axis=-1, mode="nearest"
    )
    half, edge, amp_half = int(0.2 * fs), int(0.25 * fs), int(0.08 * fs)
    offsets = np.arange(-half, half + 1)
    heart_rate = np.full(batch, np.nan)
    qrs_ms = np.full(batch, np.nan)
    amplitude = np.full((batch, n_leads), np.nan)
    n_beats = np.zeros(batch, dtype=np.int64)
    qt_ms = np.full(batch, np.nan)
    for b in range(batch):
        n = int(valid_lengths[b])
        if n <= 2 * edge + 1:
            continue
        env = envelope[b, :n]
        height = 0.3 * float(np.percentile(env[edge : n - edge], 99))
        peaks, _ = find_peaks(env, height=height, distance=max(int(0.24 * fs), 1))
        peaks = peaks[(peaks >= edge) & (peaks < n - edge)]
        n_beats[b] = peaks.size
        seconds = (n - 2 * edge) / fs
        heart_rate[b] = (
            60.0 * fs / float(np.median(np.diff(peaks)))
            if peaks.size >= 2
            else 60.0 * peaks.size / seconds
        )
        whole = peaks[(peaks >= half) & (peaks + half < n)]
        if whole.size == 0:
            continue
        median_beat = np.median(x[b][:, whole[:, None] + offsets], axis=1)  # (leads, window)
        centre = median_beat[:, half - amp_half : half + amp_half + 1]
        amplitude[b] = centre.max(axis=-1) - centre.min(axis=-1)
        qrs_ms[b] = _median_qrs_width(x[b][:, whole[:, None] + offsets], half, fs)
        if peaks.size >= 2:
            qt_ms[b] = _median_qt(x[b, :, :n], peaks, float(np.median(np.diff(peaks))), fs)
    return BeatFeatures(heart_rate, qrs_ms, amplitude, n_beats, qt_ms)


# QT measurement (see :func:`_median_qt`).
QRS_QUIET_FRACTION = 0.2  # spatial velocity below this share of its QRS peak is quiet
T_END_FRACTION = 0.3  # the T wave ends where its spatial magnitude falls below this share
T_MIN_FRACTION = 0.04  # a T wave smaller than this share of the QRS is not measured


def _median_qt(x: np.ndarray, peaks: np.ndarray, rr: float, fs: float) -> float:
    """QT of the median beat, QRS onset to T-wave end, in ms (NaN when not measurable).

    The median beat runs from 250 ms before each detection to 92 % of the
    median RR after it (1.8 s at most), over the beats where that window fits.
    QRS onset and end: where the spatial velocity (sum over leads of the
    absolute derivative, smoothed over 10 ms) stays under 20 % of its QRS peak
    for 20 ms (the dips between the waves of a notched or bundle-branch QRS are
    shorter); the end is capped at 35 % of the RR after the onset (in LBBB the
    ST segment runs straight into the T wave). The T wave is the largest
    spatial magnitude (root sum of squares over leads of the beat less each
    lead's median, the isoelectric level on which most samples of an ECG lie)
    between 40 ms after the QRS end, past any still-descending R' or S wave,
    and 70 % of the RR; it ends where the magnitude first falls below 30 % of
    that peak, within 75 % of the RR after the QRS onset (later, the T wave has
    run into the next P wave and has no clean end). A threshold on the
    magnitude, not a tangent, so that a time stretch scales the measured QT by
    exactly its factor. Reads ~20-50 ms shorter than the QT the simulator
    builds, and shorter still in LBBB (onset late on a slurred QRS): where it
    cannot measure it returns NaN rather than guess, so that its errors are
    mostly short ones. NaN without a T wave reaching 4 % of the QRS magnitude
    (a flat T) or without its end inside the window.

    Args:
        x: ``(leads, n)`` one record's valid samples.
        peaks: the QRS detections (samples).
        rr: the median RR interval (samples).
        fs: the sampling rate.
    """
    pre = int(0.25 * fs)
    post = int(min(0.92 * rr, 1.8 * fs))
    usable = peaks[(peaks >= pre) & (peaks + post < x.shape[-1])]
    if usable.size == 0:
        return float("nan")
    beat = np.median(x[:, usable[:, None] + np.arange(-pre, post + 1)], axis=1)  # (leads, w)
    velocity = uniform_filter1d(np.abs(np.diff(beat, axis=-1)).sum(axis=0), max(int(0.01 * fs), 1))
    lo, hi = pre - int(0.06 * fs), pre + int(0.06 * fs)
    top = lo + int(np.argmax(velocity[lo:hi]))
    quiet = (velocity < QRS_QUIET_FRACTION * velocity[top]).astype(np.int64)
    run = max(int(0.02 * fs), 1)
    counts = np.convolve(quiet, np.ones(run, dtype=np.int64), mode="full")
    before = np.flatnonzero(counts[: quiet.size][:top] >= run)  # quiet runs ending here
    onset = int(before[-1]) + 1 if before.size else 0
    after = np.flatnonzero(counts[run - 1 :][top:] >= run)  # quiet runs starting here
    offset = min(top + int(after[0]) if after.size else quiet.size, onset + int(0.35 * rr))
    level = np.median(x[:, ::4], axis=-1, keepdims=True)  # isoelectric; every 4th sample will do
    magnitude = np.sqrt(((beat - level) ** 2).sum(axis=0))
    start, stop = offset + int(0.04 * fs), pre + int(0.7 * rr)
    if stop <= start + 2:
        return float("nan")
    smooth = uniform_filter1d(magnitude[start:stop], max(int(0.02 * fs), 1))
    rising = np.flatnonzero(np.diff(smooth) > 0)
    if rising.size == 0:
        return float("nan")
    floor = start + int(rising[0])  # the end of a descending R' or S wave
    t_peak = floor + int(np.argmax(magnitude[floor:stop]))
    if (
        t_peak >= stop - 1
        or magnitude[t_peak] < T_MIN_FRACTION * magnitude[onset : offset + 1].max()
    ):
        return float("nan")  # no T wave inside the window, or a flat one: not measurable
    # A T wave still up at 75 % of the RR has met the next P wave: no clean end.
    ends = np.flatnonzero(
        magnitude[t_peak : onset + int(0.75 * rr)] < T_END_FRACTION * magnitude[t_peak]
    )
    if ends.size == 0:
        return float("nan")
    return (t_peak + int(ends[0]) - onset) * 1000.0 / fs


def _median_qrs_width(beats: np.ndarray, half: int, fs: float) -> float:
    """Median over beats of the QRS width, in ms; ``beats`` is ``(leads, n_beats, window)``.

    Per beat, the spatial velocity (sum over leads of the absolute derivative,
    smoothed over 10 ms) is above 20 % of its peak (the peak searched within
    ±60 ms of the detection) from onset to offset. Widths per beat, then the
    median: robust to a few misaligned or noisy beats.
    """
    velocity = uniform_filter1d(
        np.abs(np.diff(beats, axis=-1)).sum(axis=0), max(int(0.01 * fs), 1), axis=-1
    )  # (n_beats, window - 1)
    width = velocity.shape[-1]
    lo, hi = half - int(0.06 * fs), half + int(0.06 * fs)
    top = lo + np.argmax(velocity[:, lo:hi], axis=-1)
    threshold = 0.2 * velocity[np.arange(velocity.shape[0]), top]
    index = np.arange(width)
    below = velocity < threshold[:, None]
    onset = np.where(below & (index < top[:, None]), index, -1).max(axis=-1) + 1
    offset = np.where(below & (index >= top[:, None]), index, width).min(axis=-1)
    return float(np.median(offset - onset)) * 1000.0 / fs


def check_plausibility(
    features: BeatFeatures, index: int, config: QCConfig | None = None
) -> QCResult:
    """Heart rate, QT, QRS width and QRS amplitude of record ``index`` against ``config``.

    Order: rate (a stretched recording also has a wide, odd QRS), the stretch
    patterns (slow with a wide QRS; slow with a QTc no heart makes), QRS width,
    then amplitude (a gain error leaves timing intact).
    """
    config = config or QCConfig()
    rate = float(features.heart_rate_bpm[index])
    qrs = float(features.qrs_ms[index])
    amplitude = features.qrs_amplitude_mv[index]
    if not config.min_heart_rate_bpm <= rate <= config.max_heart_rate_bpm:
        return (
            Reason.IMPLAUSIBLE_RATE,
            f"heart rate {rate:.0f} bpm ({int(features.n_beats[index])} beats) outside "
            f"{config.min_heart_rate_bpm:g}-{config.max_heart_rate_bpm:g} bpm: "
            "is the sampling rate in the file right?",
        )
    if rate < config.stretch_heart_rate_bpm and qrs > config.stretch_qrs_ms:
        return (
            Reason.IMPLAUSIBLE_RATE,
            f"heart rate {rate:.0f} bpm with a {qrs:.0f} ms QRS: looks stretched in time "
            "(sampling rate in the file lower than the true one?)",
        )
    qt = float(features.qt_ms[index])
    qtc = qt / np.cbrt(60.0 / rate)  # Fridericia; NaN (no T wave) never fires
    if rate < config.stretch_qt_heart_rate_bpm and qtc > config.max_qtc_ms:
        return (
            Reason.IMPLAUSIBLE_RATE,
            f"QT {qt:.0f} ms at {rate:.0f} bpm (QTc Fridericia {qtc:.0f} ms, above "
            f"{config.max_qtc_ms:g} ms): looks stretched in time "
            "(sampling rate in the file lower than the true one?)",
        )
    if not config.min_qrs_ms <= qrs <= config.max_qrs_ms:
        return (
            Reason.IMPLAUSIBLE_QRS,
            f"QRS width {qrs:.0f} ms outside {config.min_qrs_ms:g}-{config.max_qrs_ms:g} ms",
        )
    largest = int(np.argmax(amplitude))
    if amplitude[largest] > config.max_qrs_amplitude_mv:
        names = [STORE_LEADS[k] for k in np.flatnonzero(amplitude > config.max_qrs_amplitude_mv)]
        return (
            Reason.IMPLAUSIBLE_AMPLITUDE,
            f"QRS amplitude {amplitude[largest]:.1f} mV in {', '.join(names)} above "
            f"{config.max_qrs_amplitude_mv:g} mV: wrong gain or units?",
        )
    if amplitude[largest] < config.min_qrs_amplitude_mv:
        return (
            Reason.IMPLAUSIBLE_AMPLITUDE,
            f"largest QRS amplitude {amplitude[largest]:.2f} mV ({STORE_LEADS[largest]}) "
            f"below {config.min_qrs_amplitude_mv:g} mV: wrong gain or units?",
        )
    return None
