"""The cardiac dipole (vectorcardiogram) and its projection onto the 12 leads.

A heartbeat is a 3-D dipole ``d(t)`` in Frank coordinates (+X left, +Y feet,
+Z back) written as a sum of waves, each a vector times an asymmetric
Gaussian in time (P, septal, main and terminal QRS forces, optional block and
infarct forces, ST-J and T). One template per ECG is laid along a
beat-to-beat RR series; respiration sways the axis. The eight independent
leads (I, II, V1-V6) are the dipole seen through the Dower lead vectors
(Edenbrandt & Pahlm 1988), jittered per recording for electrode placement;
III, aVR, aVL and aVF follow from I and II by Einthoven's and Goldberger's
laws, exactly as electrocardiographs derive them.

Everything is vectorised over a batch of ECGs; times are in ms, voltages in mV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cape.simulator.devices import phasors

# Dower matrix: rows I, II, V1..V6; columns the X, Y, Z dipole components.
# Source: Edenbrandt & Pahlm, J Electrocardiol 1988;21:361 (BRAVEHEART dowermatrix.m).
DOWER = np.array(
    [
        [0.632, -0.235, 0.059],
        [0.235, 1.066, -0.132],
        [-0.515, 0.157, -0.917],
        [0.044, 0.164, -1.387],
        [0.882, 0.098, -1.277],
        [1.213, 0.127, -0.601],
        [1.125, 0.127, -0.086],
        [0.831, 0.076, 0.230],
    ]
)
RECORDED_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")

# Template window around each R peak: long enough for a P wave after a
# 300 ms PR and for the end of a T wave after a 550 ms QT.
WINDOW_PRE_MS = 450.0
WINDOW_POST_MS = 700.0
MIN_RR_MS = 250.0  # 240 bpm: nothing faster is generated
MAX_RR_MS = 2500.0


@dataclass
class BeatModel:
    """Per-ECG parameters of the dipole model (batch of ``n`` ECGs, ``w`` waves).

    Attributes:
        centre_ms: ``(n, w)`` wave peak times relative to the R peak.
        sigma_left_ms: ``(n, w)`` Gaussian width before the peak.
        sigma_right_ms: ``(n, w)`` Gaussian width after the peak.
        vector_mv: ``(n, w, 3)`` wave dipole vector (amplitude x direction), mV.
        rr_ms: ``(n,)`` mean RR interval.
        rmssd_ms: ``(n,)`` target beat-to-beat RMSSD of sinus rhythm.
        af: ``(n,)`` bool, atrial fibrillation (irregular RR, f waves).
        rr_cv: ``(n,)`` coefficient of variation of RR in AF.
        fwave_mv: ``(n,)`` f-wave dipole amplitude (0 without AF).
        fwave_hz: ``(n,)`` f-wave frequency.
        fwave_vector: ``(n, 3)`` unit direction of the f waves.
        resp_hz: ``(n,)`` respiration rate.
        sway_deg: ``(n,)`` respiratory sway of the frontal axis.
        qrs_onset_ms: ``(n,)`` QRS onset relative to the R peak.
        qrs_ms: ``(n,)`` QRS duration.
    """

    centre_ms: np.ndarray
    sigma_left_ms: np.ndarray
    sigma_right_ms: np.ndarray
    vector_mv: np.ndarray
    rr_ms: np.ndarray
    rmssd_ms: np.ndarray
    af: np.ndarray
    rr_cv: np.ndarray
    fwave_mv: np.ndarray
    fwave_hz: np.ndarray
    fwave_vector: np.ndarray
    resp_hz: np.ndarray
    sway_deg: np.ndarray
    qrs_onset_ms: np.ndarray
    qrs_ms: np.ndarray

    def __len__(self) -> int:
        return int(self.rr_ms.shape[0])


def direction(frontal_deg: np.ndarray | float, elevation_deg: np.ndarray | float) -> np.ndarray:
    """Unit vector(s) from a frontal-plane angle and an elevation.

    Args:
        frontal_deg: angle in the frontal (X-Y) plane, 0 = leftward (+X),
            90 = towards the feet (+Y).
        elevation_deg: angle out of the frontal plane, positive = posterior (+Z).

    Returns:
        ``(..., 3)`` unit vectors (X, Y, Z).
    """
    phi = np.radians(frontal_deg)
    psi = np.radians(elevation_deg)
    return np.stack(
        np.broadcast_arrays(np.cos(psi) * np.cos(phi), np.cos(psi) * np.sin(phi), np.sin(psi)),
        axis=-1,
    )


def rotation_matrices(x_deg: np.ndarray, y_deg: np.ndarray, z_deg: np.ndarray) -> np.ndarray:
    """``(n, 3, 3)`` rotations about X, then Y, then Z (heart position in the chest)."""
    ax, ay, az = (np.radians(np.asarray(a, dtype=float)) for a in (x_deg, y_deg, z_deg))
    n = ax.shape[0]
    rx = np.zeros((n, 3, 3))
    ry = np.zeros((n, 3, 3))
    rz = np.zeros((n, 3, 3))
    rx[:, 0, 0] = 1
    rx[:, 1, 1] = rx[:, 2, 2] = np.cos(ax)
    rx[:, 1, 2], rx[:, 2, 1] = -np.sin(ax), np.sin(ax)
    ry[:, 1, 1] = 1
    ry[:, 0, 0] = ry[:, 2, 2] = np.cos(ay)
    ry[:, 0, 2], ry[:, 2, 0] = np.sin(ay), -np.sin(ay)
    rz[:, 2, 2] = 1
    rz[:, 0, 0] = rz[:, 1, 1] = np.cos(az)
    rz[:, 0, 1], rz[:, 1, 0] = -np.sin(az), np.sin(az)
    return rz @ ry @ rx


def rr_intervals(model: BeatModel, n_beats: int, rng: np.random.Generator) -> np.ndarray:
    """Beat-to-beat RR intervals, ``(n, n_beats)`` ms.

    Sinus rhythm: the mean RR plus white beat-to-beat variation and a
    respiratory sinus arrhythmia, scaled so the RMSSD is close to
    ``model.rmssd_ms``. Atrial fibrillation: independent log-normal RRs with
    coefficient of variation ``model.rr_cv`` (irregularly irregular).
    """
    n = len(model)
    z = rng.standard_normal((n, n_beats))
    phase = rng.uniform(0, 2 * math.pi, (n, 1))
    beat_index = np.arange(n_beats)[None, :]
    # White part contributes ~0.92 x RMSSD, the respiratory sine ~0.2 x RMSSD.
    rsa = np.sin(
        2 * math.pi * model.resp_hz[:, None] * beat_index * model.rr_ms[:, None] / 1000 + phase
    )
    sinus = model.rr_ms[:, None] + model.rmssd_ms[:, None] * (0.65 * z + 0.35 * rsa)
    cv = model.rr_cv[:, None]
    fib = model.rr_ms[:, None] * np.exp(cv * z - 0.5 * cv**2)
    rr = np.where(model.af[:, None], fib, sinus)
    return np.clip(rr, MIN_RR_MS, MAX_RR_MS)


def beat_template(model: BeatModel, sampling_rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """One beat's dipole per ECG on the sample grid around the R peak.

    Returns:
        ``(template, t_ms)``: template ``(n, 3, L)`` mV and the times ``(L,)``
        ms of its samples relative to the R peak.
    """
    n_pre = math.ceil(WINDOW_PRE_MS * sampling_rate_hz / 1000)
    n_post = math.ceil(WINDOW_POST_MS * sampling_rate_hz / 1000)
    t_ms = (np.arange(n_pre + n_post) - n_pre) * (1000.0 / sampling_rate_hz)
    offset = t_ms[None, None, :] - model.centre_ms[:, :, None]  # (n, w, L)
    sigma = np.where(offset < 0, model.sigma_left_ms[:, :, None], model.sigma_right_ms[:, :, None])
    shape = np.exp(-0.5 * np.square(offset / sigma))
    return np.matmul(model.vector_mv.transpose(0, 2, 1), shape), t_ms


def measured_axis_deg(model: BeatModel, template: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
    """Frontal QRS axis as a cardiologist measures it: net QRS area in I and aVF."""
    in_qrs = (t_ms[None, :] >= model.qrs_onset_ms[:, None]) & (
        t_ms[None, :] <= (model.qrs_onset_ms + model.qrs_ms)[:, None]
    )
    lead_i = np.einsum("k,nkl->nl", DOWER[0], template)
    lead_ii = np.einsum("k,nkl->nl", DOWER[1], template)
    avf = lead_ii - lead_i / 2
    return np.degrees(np.arctan2((avf * in_qrs).sum(axis=1), (lead_i * in_qrs).sum(axis=1)))


def spatial_qrs_t_angle_deg(model: BeatModel, template: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
    """Spatial QRS-T angle (degrees) between the mean QRS and mean ST-T vectors.

    The "mean vector" method of VCG studies: the dipole summed over the QRS
    (onset to onset + duration) against the dipole summed from the QRS end to
    the end of the beat window (ST segment and T wave).
    """
    onset = model.qrs_onset_ms[:, None]
    end = (model.qrs_onset_ms + model.qrs_ms)[:, None]
    in_qrs = (t_ms[None, :] >= onset) & (t_ms[None, :] <= end)
    after = t_ms[None, :] > end
    qrs = np.einsum("nkl,nl->nk", template, in_qrs.astype(float))
    st_t = np.einsum("nkl,nl->nk", template, after.astype(float))
    cosine = (qrs * st_t).sum(axis=1) / (np.linalg.norm(qrs, axis=1) * np.linalg.norm(st_t, axis=1))
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def beat_times_ms(model: BeatModel, duration_ms: float, rng: np.random.Generator) -> np.ndarray:
    """R-peak times ``(n, k)`` ms covering a recording of ``duration_ms``.

    The first beat falls before ``-WINDOW_POST_MS`` (a random phase of the
    rhythm), so the recording starts mid-rhythm; the slots run until every
    row has a beat past the end plus the template's lead-in. Rows with
    slower rhythms have trailing beats beyond the recording; they are ignored
    by :func:`overlap_add`.
    """
    n = len(model)
    # Enough beats for the fastest possible rhythm, then cut to what any row reaches.
    n_beats = (
        math.ceil((duration_ms + WINDOW_PRE_MS + 2 * WINDOW_POST_MS + MAX_RR_MS) / MIN_RR_MS) + 1
    )
    rr = rr_intervals(model, n_beats, rng)
    first = -WINDOW_POST_MS - rng.uniform(0, 1, n) * rr[:, 0]
    beat_ms = first[:, None] + np.concatenate(
        [np.zeros((n, 1)), np.cumsum(rr[:, :-1], axis=1)], axis=1
    )
    needed = int((beat_ms <= duration_ms + WINDOW_PRE_MS).sum(axis=1).max()) + 1
    return beat_ms[:, :needed]


def overlap_add(
    template: np.ndarray, n_pre: int, beat_ms: np.ndarray, sampling_rate_hz: float, n_samples: int
) -> np.ndarray:
    """Lay each row's beat template at its R peaks (rounded to the sample grid).

    Args:
        template: ``(n, 3, L)`` one beat, its R peak at index ``n_pre``.
        n_pre: samples of the template before the R peak.
        beat_ms: ``(n, k)`` R-peak times.
        sampling_rate_hz: sample rate.
        n_samples: output length.

    Returns:
        ``(n, 3, n_samples)`` sum of the overlapping beats.
    """
    n, _, length = template.shape
    # Buffer index = sample index + length; a beat's window starts n_pre before its R.
    start = np.rint(beat_ms * sampling_rate_hz / 1000).astype(np.int64) + length - n_pre
    buffer = np.zeros((n, 3, n_samples + 2 * length))
    last = buffer.shape[2] - length
    # Plain slices in a per-row loop: faster here than one fancy-indexed scatter.
    for row in range(n):
        target, beat = buffer[row], template[row]
        for begin in start[row][(start[row] >= 0) & (start[row] <= last)]:
            target[:, begin : begin + length] += beat
    return buffer[:, :, length : length + n_samples]


def render_dipole(
    model: BeatModel, sampling_rate_hz: float, n_samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Synthesise the dipole of a batch of ECGs.

    Args:
        model: per-ECG beat parameters.
        sampling_rate_hz: output rate; waves are evaluated on this grid, so
            no resampling (and no aliasing: the narrowest wave is > 4 ms wide).
        n_samples: output length.
        rng: random generator (RR series, start phase, respiration phase).

    Returns:
        ``(dipole, axis_deg)``: dipole ``(n, 3, n_samples)`` mV and the
        measured frontal QRS axis ``(n,)`` of each ECG's beat.
    """
    n = len(model)
    template, t_ms = beat_template(model, sampling_rate_hz)
    axis = measured_axis_deg(model, template, t_ms)
    beat_ms = beat_times_ms(model, n_samples * 1000.0 / sampling_rate_hz, rng)
    dipole = overlap_add(template, int(np.sum(t_ms < 0)), beat_ms, sampling_rate_hz, n_samples)

    t_s = np.arange(n_samples) / sampling_rate_hz
    # Respiration rotates the heart in the frontal plane and changes its
    # distance to the electrodes a little (amplitude modulation ~ +-3 %).
    # The sway is < 0.25 rad, so cos and sin are taken to third order.
    breath = phasors(model.resp_hz[:, None], n_samples, sampling_rate_hz)[:, 0]
    breath = breath * np.exp(1j * rng.uniform(0, 2 * math.pi, (n, 1)))
    theta = np.radians(model.sway_deg)[:, None] * breath.imag
    gain = 1.0 + 0.03 * breath.real
    cos_t, sin_t = gain * (1 - theta**2 / 2), gain * theta * (1 - theta**2 / 6)
    x, y = dipole[:, 0], dipole[:, 1]
    dipole = np.stack([x * cos_t - y * sin_t, x * sin_t + y * cos_t, gain * dipole[:, 2]], axis=1)
    rows = np.flatnonzero(model.af)
    if rows.size:
        waves = fibrillatory_waves(model.fwave_mv[rows], model.fwave_hz[rows], t_s, rng)
        dipole[rows] += model.fwave_vector[rows, :, None] * waves[:, None, :]
    return dipole, axis


def fibrillatory_waves(
    amplitude_mv: np.ndarray, freq_hz: np.ndarray, t_s: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """AF f waves: a 4-9 Hz oscillation whose rate (+-10 %) and amplitude wander, ``(n, T)`` mV."""
    n = amplitude_mv.shape[0]
    wander_hz = rng.uniform(0.05, 0.2, (n, 1))
    phase0 = rng.uniform(0, 2 * math.pi, (n, 3))
    # Instantaneous frequency f0 * (1 + 0.1 sin(.)): integrate it for the phase.
    freq_phase = (freq_hz[:, None] * 0.1 / (2 * math.pi * wander_hz)) * (
        1 - np.cos(2 * math.pi * wander_hz * t_s[None, :] + phase0[:, :1])
    )
    carrier = np.sin(2 * math.pi * (freq_hz[:, None] * t_s[None, :] + freq_phase) + phase0[:, 1:2])
    envelope = 0.7 + 0.3 * np.sin(2 * math.pi * 0.3 * t_s[None, :] + phase0[:, 2:3])
    return amplitude_mv[:, None] * envelope * carrier


def lead_matrices(
    n: int,
    rng: np.random.Generator,
    electrode_sd: float | np.ndarray = 0.2,
    gain_sd: float = 0.02,
) -> np.ndarray:
    """Per-recording lead vectors: the Dower matrix with placement jitter.

    Each precordial electrode lands ``electrode_sd`` inter-electrode spacings
    (SD) away from its place, moving its lead vector along the row-to-row
    gradient of the Dower matrix; every lead's gain varies by ``gain_sd``
    (skin contact, body position).

    Returns:
        ``(n, 8, 3)`` lead vectors for I, II, V1-V6.
    """
    matrices = np.broadcast_to(DOWER, (n, 8, 3)).copy()
    gradient = np.gradient(DOWER[2:], axis=0)  # (6, 3): change per electrode position
    spread = np.broadcast_to(np.asarray(electrode_sd, dtype=float), (n,))[:, None, None]
    matrices[:, 2:] += spread * rng.normal(0.0, 1.0, (n, 6, 1)) * gradient[None]
    matrices *= 1.0 + gain_sd * rng.standard_normal((n, 8, 1))
    return matrices


def project(dipole: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Leads from the dipole: ``(n, 3, T)`` and ``(n, 8, 3)`` -> ``(n, 8, T)`` mV."""
    return np.matmul(matrices, dipole)


def twelve_leads(recorded: np.ndarray) -> np.ndarray:
    """The 12 standard leads from the eight recorded ones, as electrocardiographs derive them.

    Args:
        recorded: ``(n, 8, T)`` leads I, II, V1-V6.

    Returns:
        ``(n, 12, T)`` leads I, II, III, aVR, aVL, aVF, V1-V6 with
        III = II - I, aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2.
    """
    lead_i, lead_ii = recorded[:, 0], recorded[:, 1]
    limb = np.stack(
        [
            lead_i,
            lead_ii,
            lead_ii - lead_i,
            -(lead_i + lead_ii) / 2,
            lead_i - lead_ii / 2,
            lead_ii - lead_i / 2,
        ],
        axis=1,
    )
    return np.concatenate([limb, recorded[:, 2:]], axis=1)
