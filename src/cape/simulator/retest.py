"""Test-retest statistics of simulated ECGs, for calibration against published figures.

Two ECGs per patient a short time apart (``days_between``), measured the way a
test-retest study would: within-subject SD of the intervals and the QRS axis
(from the truth table, the values the simulator rendered), within-subject
coefficient of variation of Sokolow-Lyon voltage and of the T amplitude in II
(from median beats of the signals, so electrode placement, heart position,
respiration and noise all count), and the median-beat correlation of the same
patient's ECGs against other patients'. docs/simulator.md sets these beside
the literature (``python -m cape.simulator.retest`` prints them).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pandas as pd
from scipy import signal

from cape.simulator.cohorts import SimulationSpec, VisitsSpec
from cape.simulator.generate import iter_cohort_chunks
from cape.simulator.presets import preset

LEADS_8 = [0, 1, 6, 7, 8, 9, 10, 11]  # I, II, V1-V6 of the 12-lead order
V1, V5, V6 = 2, 6, 7  # rows of the 8-lead median beat


def _bandpass(x: np.ndarray, fs: float, low: float, high: float) -> np.ndarray:
    sos = signal.butter(2, [low, high], btype="bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x, axis=-1)


def r_peaks(lead: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices of one lead: peaks of the 5-25 Hz envelope (scipy find_peaks)."""
    envelope = np.abs(_bandpass(lead, fs, 5.0, 25.0))
    peaks, _ = signal.find_peaks(
        envelope, height=0.4 * np.percentile(envelope, 99.5), distance=int(0.3 * fs)
    )
    return peaks


def median_beat(signals12: np.ndarray, fs: float) -> np.ndarray:
    """``(8, L)`` median beat of I, II, V1-V6 from -0.3 s to +0.5 s around R (0.5-40 Hz)."""
    leads = _bandpass(signals12[LEADS_8], fs, 0.5, 40.0)
    pre, post = int(0.3 * fs), int(0.5 * fs)
    peaks = r_peaks(signals12[1], fs)
    peaks = peaks[(peaks > pre) & (peaks < signals12.shape[1] - post)]
    beat = np.median(np.stack([leads[:, p - pre : p + post] for p in peaks]), axis=0)
    return beat - beat[:, : int(0.05 * fs)].mean(axis=1, keepdims=True)


def _amplitudes(beat: np.ndarray, fs: float) -> tuple[float, float]:
    """Sokolow-Lyon voltage (S in V1 + larger R in V5/V6) and T amplitude in II, mV."""
    t_ms = (np.arange(beat.shape[1]) - int(0.3 * fs)) / fs * 1000
    qrs = (t_ms > -60) & (t_ms < 80)
    t_wave = (t_ms > 150) & (t_ms < 450)
    sokolow = -beat[V1, qrs].min() + max(beat[V5, qrs].max(), beat[V6, qrs].max())
    t_ii = beat[1, t_wave][np.argmax(np.abs(beat[1, t_wave]))]
    return float(sokolow), float(abs(t_ii))


def _within_sd(values: np.ndarray, patients: np.ndarray) -> float:
    """Within-subject SD from each patient's first two ECGs, robustly.

    ``1.4826 * median(|x1 - x2|) / sqrt(2)``: the SD for normal differences, and not
    thrown by the odd failed median beat (one failure in 60 patients moves the plain
    pooled SD several-fold).
    """
    frame = pd.DataFrame({"v": values, "p": patients})
    pairs = frame.groupby("p")["v"].agg(lambda v: v.iloc[1] - v.iloc[0] if len(v) > 1 else np.nan)
    return float(1.4826 * np.nanmedian(np.abs(pairs.to_numpy())) / np.sqrt(2.0))


def retest_statistics(
    spec: SimulationSpec,
    cohort: str = "harbor",
    n_patients: int = 200,
    days_between: float = 7.0,
) -> dict[str, float]:
    """Within-subject variability of ``n_patients`` patients' two ECGs ``days_between`` apart.

    Patients with atrial fibrillation are left out (no P wave, irregular rate: test-retest
    studies are of sinus rhythm). Returns a flat dict of named statistics.
    """
    visits = VisitsSpec(
        min_ecgs=2, mean_ecgs=2, max_ecgs=2, mean_years_between=days_between / 365.25
    )
    update = {"n_patients": n_patients, "visits": visits}
    one = spec.cohort(cohort).model_copy(update=update)
    spec = spec.model_copy(update={"cohorts": [one], "scale": 1.0})
    beats, sokolow, t_ii, rows = [], [], [], []
    for chunk in iter_cohort_chunks(spec, cohort):
        for signals in chunk.signals:
            beat = median_beat(signals, chunk.sampling_rate_hz)
            beats.append(beat.ravel())
            amplitudes = _amplitudes(beat, chunk.sampling_rate_hz)
            sokolow.append(amplitudes[0])
            t_ii.append(amplitudes[1])
        rows.append(chunk.ecgs)
    ecgs = pd.concat(rows, ignore_index=True)
    sinus = ~ecgs["AFIB"].astype(bool).to_numpy()
    patients = ecgs["patient_id"].to_numpy()
    out: dict[str, float] = {}
    for column, name in (
        ("heart_rate_bpm", "heart_rate_sd_bpm"),
        ("pr_ms", "pr_sd_ms"),
        ("qrs_ms", "qrs_sd_ms"),
        ("qtc_ms", "qtc_sd_ms"),
        ("qrs_axis_deg", "qrs_axis_sd_deg"),
    ):
        out[name] = _within_sd(ecgs[column].to_numpy()[sinus], patients[sinus])
    for values, name in ((np.array(sokolow), "sokolow_lyon_cv"), (np.array(t_ii), "t_ii_cv")):
        ratio = values / pd.Series(values).groupby(patients).transform("mean").to_numpy()
        out[name] = _within_sd(ratio[sinus], patients[sinus])
    corr = np.corrcoef(np.array(beats))
    same = patients[:, None] == patients[None, :]
    out["beat_correlation_same_patient"] = float(corr[same & ~np.eye(len(ecgs), dtype=bool)].mean())
    out["beat_correlation_other_patients"] = float(corr[~same].mean())
    out["n_patients_sinus"] = float(len(np.unique(patients[sinus])))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cape.simulator.retest",
        description="Test-retest variability of the simulator's ECGs (docs/simulator.md)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--cohort", default="harbor")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--days", type=float, default=7.0, help="days between the two ECGs")
    parser.add_argument(
        "--visit-variability", type=float, nargs="+", default=[1.0], help="knob values"
    )
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for value in args.visit_variability:
        spec = preset(args.preset).model_copy(update={"visit_variability": value})
        stats = retest_statistics(spec, args.cohort, args.patients, args.days)
        rows.append({"visit_variability": value, **stats})
    print(pd.DataFrame(rows).set_index("visit_variability").T.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
