"""The dipole waves of each ECG: normal morphology and what each condition changes.

Turns an ECG's traits (:mod:`cape.simulator.physiology`) into the per-wave
timing, width and 3-D vector of the dipole model (:mod:`cape.simulator.dipole`).
Directions are given as a frontal-plane angle (0 deg leftward, 90 deg towards
the feet) and an elevation (positive = posterior) in Frank coordinates; their
defaults were chosen so the Dower projection gives a normal 12-lead picture
(R rising from V1 to V5, transition at V3-V4, axis ~40 deg, T upright in I,
II and V2-V6). Condition patterns follow the AHA 2009 and 4th universal MI
definitions (see docs/simulator.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cape.simulator.conditions import CONDITION_CODES
from cape.simulator.dipole import BeatModel, direction, rotation_matrices
from cape.simulator.physiology import N_CONDITION_UNIFORMS

N_WAVES = 10
WAVES = (
    "P",
    "septal",
    "main",
    "main (LBBB notch)",
    "terminal",
    "R' (RBBB)",
    "inferior MI",
    "anterior MI",
    "ST-J",
    "T",
)


def beat_model(ecgs: pd.DataFrame) -> BeatModel:
    """The dipole waves of each ECG from its traits and conditions.

    Waves (columns of the arrays): P, septal, main QRS (two halves, notched
    in LBBB), terminal QRS, R' (right bundle branch block), inferior and
    anterior infarct forces, ST-J, T.
    """
    n = len(ecgs)
    col = {
        name: ecgs[name].to_numpy(dtype=float)
        for name in ecgs.columns
        if pd.api.types.is_numeric_dtype(ecgs[name].dtype)
    }
    flag = {code: ecgs[code].to_numpy(dtype=bool) for code in CONDITION_CODES}
    u = [col[f"u_condition_{k}"] for k in range(N_CONDITION_UNIFORMS)]
    qrs, qrs_n = col["qrs_ms"], col["qrs_normal_ms"]
    onset = -0.45 * qrs_n - 0.25 * (qrs - qrs_n)
    rr = 60000.0 / col["heart_rate_bpm"]

    centre = np.zeros((n, N_WAVES))
    sigma_l = np.ones((n, N_WAVES))
    sigma_r = np.ones((n, N_WAVES))
    amp = np.zeros((n, N_WAVES))
    dirs = np.zeros((n, N_WAVES, 3))

    def wave(
        k: int, c: np.ndarray, sl: np.ndarray, sr: np.ndarray, a: np.ndarray, d: np.ndarray
    ) -> None:
        centre[:, k], sigma_l[:, k], sigma_r[:, k], amp[:, k] = c, sl, sr, a
        dirs[:, k] = d

    p_dur = col["p_duration_ms"]
    wave(
        0,
        onset - col["pr_ms"] + p_dur / 2,
        p_dur / 5.5,
        p_dur / 4.6,
        0.15 * col["p_amplitude"],
        direction(55.0, -10.0),
    )
    main_dir = direction(col["qrs_frontal_deg"], col["qrs_elevation_deg"])
    main_amp = 1.8 * col["qrs_amplitude"]
    # Septal and terminal forces scale with the QRS voltage: women's Q, R and S
    # deflections are all smaller, and all shrink with age (VCG studies,
    # docs/age-sex-shape-sources.md).
    septal_amp = np.exp(col["septal_log_amplitude"]) * col["qrs_amplitude"]
    terminal_amp = np.exp(col["terminal_log_amplitude"]) * col["qrs_amplitude"]
    lbbb, lvh = flag["CLBBB"], flag["LVH"]
    # LVH: voltage x1.6-2.0 and more leftward-posterior forces (Sokolow-Lyon, Cornell).
    main_amp = np.where(lvh, main_amp * (1.6 + 0.4 * u[3]), main_amp)
    # LBBB: no septal q, broad notched leftward-posterior R, little terminal force.
    lbbb_dir = direction(col["qrs_frontal_deg"] - 25.0, 50.0)
    main_dir = np.where(lbbb[:, None], lbbb_dir, main_dir)
    septal_amp = np.where(flag["AMI"], 0.15 * septal_amp, septal_amp)  # anterior MI: no r in V1
    septal_amp = np.where(lbbb, 0.0, septal_amp)
    terminal_amp = np.where(lbbb, 0.2 * terminal_amp, terminal_amp)
    half = np.where(lbbb, 0.13 * qrs, 0.0)
    width = np.where(lbbb, 0.13 * qrs, 0.11 * qrs_n)
    main_share = np.where(lbbb, 0.6, 1.0)
    wave(1, onset + 0.15 * qrs_n, 0.08 * qrs_n, 0.08 * qrs_n, septal_amp, direction(110.0, -65.0))
    wave(2, onset + 0.45 * qrs_n - half, width, width, main_share * main_amp, main_dir)
    wave(3, onset + 0.45 * qrs_n + half, width, width, (1 - main_share) * 1.6 * main_amp, main_dir)
    wave(
        4,
        onset + 0.75 * qrs_n + 0.5 * (qrs - qrs_n) * lbbb,
        0.09 * qrs_n,
        0.09 * qrs_n,
        terminal_amp,
        direction(-160.0, 45.0),
    )
    # RBBB: late, slow rightward-anterior force -> rsR' in V1, broad S in I and V6.
    extra = np.maximum(qrs - qrs_n, 1.0)
    rprime_amp = np.where(flag["CRBBB"], 0.45 + 0.3 * u[0], np.where(flag["IRBBB"], 0.25, 0.0))
    wave(
        5,
        onset + qrs_n * 0.8 + 0.45 * extra,
        extra / 3.0,
        extra / 3.0,
        rprime_amp,
        direction(170.0, -55.0),
    )
    # Prior MI: the dead wall's forces are missing, so early QRS points away from it:
    # superior (Q in II, III, aVF) for inferior MI, posterior (QS in V1-V3) for anterior MI.
    q_width = 0.12 * qrs_n + 4.0
    wave(
        6,
        onset + 0.25 * qrs_n,
        q_width,
        q_width,
        flag["IMI"] * (0.4 + 0.4 * u[1]),
        direction(-90.0, 0.0),
    )
    wave(
        7,
        onset + 0.25 * qrs_n,
        q_width,
        q_width,
        flag["AMI"] * (0.6 + 0.4 * u[2]),
        direction(0.0, 80.0),
    )

    # T wave: ends QT after the QRS onset; slower up-slope than down-slope.
    qt = col["qt_ms"]
    t_right = 0.085 * qt
    t_peak = onset + qt - 2.3 * t_right
    t_vec = (
        0.5 * col["t_amplitude"][:, None] * direction(col["t_frontal_deg"], col["t_elevation_deg"])
    )
    t_vec = np.where(flag["IMI"][:, None], t_vec * np.array([1.0, -0.8, 1.0]), t_vec)
    t_vec = np.where(flag["AMI"][:, None], t_vec * np.array([1.0, 1.0, -0.8]), t_vec)
    secondary = -0.35 * main_dir  # repolarisation opposite to abnormal depolarisation
    t_vec = np.where(lbbb[:, None], secondary, t_vec)
    t_vec = np.where(
        (lvh & ~lbbb)[:, None], 0.4 * t_vec + (0.1 + 0.15 * u[0])[:, None] * secondary, t_vec
    )
    isc = flag["ISC_"]
    t_vec = np.where(isc[:, None], t_vec * (-0.6 + 0.9 * u[3])[:, None], t_vec)
    # ST-J: anterior J elevation (early repolarisation), discordant ST in LBBB,
    # strain in LVH, depression in ischaemia.
    j_vec = col["st_j_mv"][:, None] * direction(60.0, -75.0)
    j_vec = j_vec + (lbbb * 0.12 + lvh * 0.05 * u[1])[:, None] * -main_dir
    j_vec = j_vec - (isc * (0.05 + 0.07 * u[2]))[:, None] * direction(
        col["t_frontal_deg"], col["t_elevation_deg"]
    )
    qrs_end = onset + qrs
    j_sigma = np.maximum((t_peak - qrs_end) / 2.2, 10.0)
    wave(8, (qrs_end + t_peak) / 2, j_sigma, j_sigma, np.ones(n), np.zeros((n, 3)))
    wave(9, t_peak, t_right * col["t_asymmetry"], t_right, np.ones(n), np.zeros((n, 3)))

    vectors = amp[:, :, None] * dirs
    vectors[:, 8] = j_vec
    vectors[:, 9] = t_vec
    rotation = rotation_matrices(
        col["heart_rot_x_deg"], col["heart_rot_y_deg"], col["heart_rot_z_deg"]
    )
    vectors = np.einsum("nij,nwj->nwi", rotation, vectors)
    fwave_dir = direction(100.0, -60.0) * np.ones((n, 1))
    return BeatModel(
        centre_ms=centre,
        sigma_left_ms=sigma_l,
        sigma_right_ms=sigma_r,
        vector_mv=vectors,
        rr_ms=rr,
        rmssd_ms=col["rmssd_ms"],
        af=flag["AFIB"],
        rr_cv=col["rr_cv"],
        fwave_mv=col["fwave_mv"],
        fwave_hz=col["fwave_hz"],
        fwave_vector=fwave_dir,
        resp_hz=col["resp_hz"],
        sway_deg=col["sway_deg"],
        qrs_onset_ms=onset,
        qrs_ms=qrs,
    )
