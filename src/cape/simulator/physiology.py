"""Patients, their ECG traits, and how age, sex and disease shape them.

Each patient draws a stable individual morphology once (standard-normal
latents per trait, heart position, wave shapes); each ECG of the patient
adds a little visit-to-visit variation. A trait's value for one ECG is

    base + age_slope * age_scale * (age - 50) + male_delta * sex_scale * (male - 1/2)
         + patient_sd * z_patient + visit_sd * z_visit

(on the log scale for amplitudes and RMSSD), clipped to a physiological
range, then changed by the patient's conditions. :data:`TRAITS` holds the
numbers and their sources; docs/simulator.md explains each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cape.simulator.cohorts import CohortSpec
from cape.simulator.conditions import CONDITION_CODES, CONDITIONS, EXCLUSIVE_PAIRS

REFERENCE_AGE_YEARS = 50.0


@dataclass(frozen=True)
class Trait:
    """One ECG trait and how it varies (see module docstring for the formula).

    For ``log`` traits ``base``/slopes/deltas/SDs are on the natural-log
    scale and the value is a multiplier or a positive quantity.
    """

    base: float
    age_slope: float  # per year
    male_delta: float  # men minus women
    patient_sd: float
    visit_sd: float
    low: float
    high: float
    log: bool = False


TRAITS: dict[str, Trait] = {
    # Mason 2007: 48-98 bpm; ELSA-Brasil: men 63, women 66 bpm.
    "heart_rate_bpm": Trait(66.0, -0.05, -3.5, 8.0, 5.0, 42.0, 130.0),
    # ELSA-Brasil PR 164 (M) vs 158 (F) ms; lengthens linearly with age (Giovanardi 2022).
    "pr_ms": Trait(160.0, 0.35, 6.0, 16.0, 3.0, 105.0, 230.0),
    # ELSA-Brasil QRS 92 (M) vs 86 (F) ms; adult ULN 110 ms (AHA 2009).
    "qrs_ms": Trait(88.0, 0.08, 6.0, 7.0, 2.0, 68.0, 112.0),
    # Fridericia QTc; ELSA-Brasil 410 (M) vs 421 (F); +~0.5 ms/yr (Mangoni 2003, Rabkin 2016).
    "qtc_ms": Trait(414.0, 0.45, -11.0, 13.0, 5.0, 360.0, 480.0),
    # CoLaus: P duration 112 (M) vs 110 (F) ms, +0.29 ms/yr.
    "p_duration_ms": Trait(108.0, 0.29, 2.0, 10.0, 3.0, 70.0, 150.0),
    # Frontal angle of the main QRS force (Frank X-Y plane). The measured axis
    # moves ~2.5x faster than this angle, so -0.15 deg/yr here is ~-0.4 deg/yr
    # measured (leftward shift with age; Framingham, Rijnbeek 2014); women +4 deg (ELSA).
    "qrs_frontal_deg": Trait(28.0, -0.15, -2.0, 7.0, 1.0, -25.0, 70.0),
    "t_frontal_deg": Trait(20.0, -0.05, -3.0, 8.0, 2.0, -25.0, 65.0),
    # QRS voltage: men ~x1.25 (Sokolow-Lyon, Cornell); falls with age to ~0.7 of the
    # youngest by old age (Ry 71 %, Rz 80 % in women) -> -0.6 %/yr.
    "qrs_amplitude": Trait(0.0, -0.006, 0.22, 0.20, 0.04, 0.3, 3.5, log=True),
    # T amplitude: men ~25 % larger; -10 % and -15 % per 20 years (J Electrocardiol 1995).
    "t_amplitude": Trait(0.0, -0.006, 0.22, 0.25, 0.05, 0.15, 3.0, log=True),
    # ST-J elevation in V1-V4 (mV): 'male pattern' in 91 % of young men, 14 % of the
    # oldest; women mostly the female pattern (Surawicz & Parikh 2002; Macfarlane 2001).
    "st_j_mv": Trait(math.log(0.055), -0.012, 0.45, 0.35, 0.08, 0.005, 0.35, log=True),
    "p_amplitude": Trait(0.0, -0.002, 0.0, 0.20, 0.05, 0.3, 2.5, log=True),
    # 10-s RMSSD: median ~66 ms at 13-14 y -> ~15 ms at 75+ (Lifelines) -> -2.4 %/yr.
    "rmssd_ms": Trait(math.log(28.0), -0.024, 0.0, 0.45, 0.25, 4.0, 160.0, log=True),
}

# Small ethnicity offsets on the trait scale (added to the linear predictor):
# higher QRS voltage and more early repolarisation in people of African
# ancestry are consistently reported; magnitudes here are rough [U].
ETHNICITY_EFFECTS: dict[str, dict[str, float]] = {
    "Black": {"qrs_amplitude": 0.08, "st_j_mv": 0.25, "qtc_ms": -3.0},
    "Asian": {"qrs_amplitude": -0.04},
}


@dataclass(frozen=True)
class ShapeLatent:
    """A patient's heart position or wave shape: ``mean + sd * z_patient`` plus age and sex terms.

    The age and sex terms enter per ECG like a trait's (``age_slope`` per year from age 50,
    ``male_delta`` men minus women), so a patient's heart position moves as they age;
    the published figures behind them are in docs/age-sex-shape-sources.md.
    """

    mean: float
    sd: float
    age_slope: float = 0.0
    male_delta: float = 0.0


SHAPE_LATENTS: dict[str, ShapeLatent] = {
    "qrs_elevation_deg": ShapeLatent(30.0, 8.0),  # posterior tilt of the main QRS force
    # Anterior tilt of the T wave. Women's T vector is less anterior than men's and
    # their spatial QRS-T angle 10-20 deg narrower (Hnatkova 2022; 66 vs 80 deg in young
    # adults, Scherptong): -17 deg here makes the simulated mean angle ~14 deg narrower
    # (tests/simulator/test_realism.py). The T vector moves anterior with age
    # (direction reported, size [U]).
    "t_elevation_deg": ShapeLatent(-40.0, 8.0, age_slope=-0.10, male_delta=-17.0),
    # Sizes of the septal and terminal QRS forces relative to the main QRS force, whose
    # voltage (``qrs_amplitude``) carries the age and sex effects on all of Q, R and S.
    "septal_log_amplitude": ShapeLatent(math.log(0.35), 0.30),
    "terminal_log_amplitude": ShapeLatent(math.log(0.35), 0.30),
    "t_asymmetry": ShapeLatent(1.4, 0.15),  # T up-/down-slope width; no age or sex effect
    "heart_rot_x_deg": ShapeLatent(0.0, 6.0),
    "heart_rot_y_deg": ShapeLatent(0.0, 6.0),
    "heart_rot_z_deg": ShapeLatent(0.0, 6.0),
}
# Visit-to-visit SD of the shape latents (heart position with posture and body
# habitus, wave shapes), on the latents' scales; with the traits' visit SDs and the
# electrode placement jitter they make a patient's ECGs differ between recordings.
# Sized [U] so that, together with electrode placement, QRS voltage and axis vary
# between recordings about as test-retest studies report (docs/simulator.md).
SHAPE_VISIT_SD: dict[str, float] = {
    "qrs_elevation_deg": 2.0,
    "t_elevation_deg": 2.0,
    "septal_log_amplitude": 0.08,
    "terminal_log_amplitude": 0.08,
    "t_asymmetry": 0.04,
    "heart_rot_x_deg": 2.0,
    "heart_rot_y_deg": 2.0,
    "heart_rot_z_deg": 2.0,
}
ELECTRODE_SD_SPACINGS = 0.2  # precordial placement error per recording, electrode spacings
N_CONDITION_UNIFORMS = 4  # per-patient uniforms that fix the severity of each condition


@dataclass(frozen=True)
class EffectScales:
    """The global knobs on age and sex effects and visit variability (1 = literature-sized)."""

    age: float = 1.0
    sex: float = 1.0
    visit: float = 1.0


def sample_visit_counts(
    cohort: CohortSpec, n_patients: int, rng: np.random.Generator
) -> np.ndarray:
    """ECGs per patient: ``min + Geometric``, capped at ``max`` (``(n_patients,)`` int)."""
    visits = cohort.visits
    extra_mean = visits.mean_ecgs - visits.min_ecgs
    if extra_mean <= 0:
        return np.full(n_patients, visits.min_ecgs, dtype=np.int64)
    # numpy's geometric counts trials (>= 1); subtract 1 for failures with mean (1-p)/p.
    p = 1.0 / (1.0 + extra_mean)
    extra = rng.geometric(p, n_patients) - 1
    return np.minimum(visits.min_ecgs + extra, visits.max_ecgs).astype(np.int64)


def sample_patients(
    cohort: CohortSpec, n_ecgs: np.ndarray, rng: np.random.Generator, scales: EffectScales
) -> pd.DataFrame:
    """Draw the patients of a cohort (one row each).

    Args:
        cohort: who the patients are.
        n_ecgs: ``(n_patients,)`` ECGs per patient (from :func:`sample_visit_counts`).
        rng: random generator.
        scales: age/sex effect knobs (age scales the age-dependence of prevalence).

    Returns:
        DataFrame with ``age_first``, ``female``, ``ethnicity``, ``n_ecgs``,
        ``first_date``, a bool column per condition, and the latents
        (``z_<trait>``, shape latents, ``u_condition_<k>``).
    """
    n = len(n_ecgs)
    age_spec = cohort.demographics.age
    low, high = (
        (age_spec.min - age_spec.mean) / age_spec.sd,
        (age_spec.max - age_spec.mean) / age_spec.sd,
    )
    age = stats.truncnorm.rvs(
        low, high, loc=age_spec.mean, scale=age_spec.sd, size=n, random_state=rng
    )
    female = rng.random(n) < cohort.demographics.female_fraction
    shares = cohort.demographics.ethnicity
    if shares:
        labels = list(shares)
        weights = np.array([shares[k] for k in labels], dtype=float)
        ethnicity = np.asarray(labels, dtype=object)[
            rng.choice(len(labels), n, p=weights / weights.sum())
        ]
    else:
        ethnicity = np.full(n, "", dtype=object)
    table: dict[str, np.ndarray] = {
        "age_first": age,
        "female": female,
        "ethnicity": ethnicity,
        "n_ecgs": n_ecgs,
    }
    start = np.datetime64(f"{cohort.first_year}-01-01T00:00:00", "s")
    span_s = (np.datetime64(f"{cohort.last_year}-12-31T00:00:00", "s") - start).astype(np.int64)
    first_day = (rng.random(n) * span_s / 86400).astype(np.int64)
    table["first_date"] = start + (first_day * 86400).astype("timedelta64[s]")

    mean_age = age_spec.mean
    draws = rng.random((n, len(CONDITION_CODES)))
    for k, code in enumerate(CONDITION_CODES):
        p0 = cohort.conditions.get(code, 0.0)
        if p0 <= 0:
            table[code] = np.zeros(n, dtype=bool)
            continue
        slope = scales.age * math.log(CONDITIONS[code].odds_ratio_per_decade) / 10.0
        logit = math.log(p0 / (1 - p0)) + slope * (age - mean_age)
        table[code] = draws[:, k] < 1.0 / (1.0 + np.exp(-logit))
    for winner, loser in EXCLUSIVE_PAIRS:
        table[loser] = table[loser] & ~table[winner]

    for name in TRAITS:
        table[f"z_{name}"] = rng.standard_normal(n)
    for name, latent in SHAPE_LATENTS.items():
        table[name] = latent.mean + latent.sd * rng.standard_normal(n)
    for k in range(N_CONDITION_UNIFORMS):
        table[f"u_condition_{k}"] = rng.random(n)
    return pd.DataFrame(table)


def sample_ecgs(
    patients: pd.DataFrame, cohort: CohortSpec, rng: np.random.Generator, scales: EffectScales
) -> pd.DataFrame:
    """One row per ECG: visit timing, device, and every trait's value.

    Returns:
        DataFrame with the patient columns repeated, plus ``patient_row``,
        ``visit``, ``age`` (years at this ECG), ``recording_date``,
        ``device_index``, the trait values (keys of :data:`TRAITS`),
        ``qt_ms``, ``rr_cv``, ``resp_hz``, ``sway_deg``, ``noise_factor``.
    """
    counts = patients["n_ecgs"].to_numpy()
    patient_row = np.repeat(np.arange(len(patients)), counts)
    n = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    visit = np.arange(n) - starts
    gaps = rng.exponential(cohort.visits.mean_years_between, n)
    gaps[visit == 0] = 0.0
    years = np.cumsum(gaps)
    years = years - years[starts]  # time since the patient's first ECG
    base = patients.iloc[patient_row].reset_index(drop=True)
    age = base["age_first"].to_numpy() + years
    # Whole days after the first ECG, at a clinic time of day (07:30-18:30).
    offset_s = np.floor(years * 365.25).astype(np.int64) * 86400 + (
        rng.uniform(7.5, 18.5, n) * 3600
    ).astype(np.int64)
    shares = np.array([d.share for d in cohort.devices], dtype=float)
    new: dict[str, np.ndarray] = {
        "patient_row": patient_row,
        "visit": visit,
        "age": age,
        "recording_date": base["first_date"].to_numpy() + offset_s.astype("timedelta64[s]"),
        "device_index": rng.choice(len(shares), n, p=shares / shares.sum()),
    }
    male = (~base["female"].to_numpy(dtype=bool)).astype(float)
    ethnicity = base["ethnicity"].to_numpy()
    for name, trait in TRAITS.items():
        value = (
            trait.base
            + scales.age * trait.age_slope * (age - REFERENCE_AGE_YEARS)
            + scales.sex * trait.male_delta * (male - 0.5)
            + trait.patient_sd * base[f"z_{name}"].to_numpy()
            + scales.visit * trait.visit_sd * rng.standard_normal(n)
        )
        for label, effects in ETHNICITY_EFFECTS.items():
            value = value + effects.get(name, 0.0) * (ethnicity == label)
        new[name] = np.clip(np.exp(value) if trait.log else value, trait.low, trait.high)
    conditions = {code: base[code].to_numpy(dtype=bool) for code in CONDITION_CODES}
    uniforms = [base[f"u_condition_{k}"].to_numpy() for k in range(N_CONDITION_UNIFORMS)]
    _apply_rhythm_conditions(new, conditions, uniforms, rng)
    new["qt_ms"] = new["qtc_ms"] * np.cbrt(60.0 / new["heart_rate_bpm"])  # Fridericia
    new["resp_hz"] = np.clip(rng.normal(0.25, 0.04, n), 0.12, 0.45)
    new["sway_deg"] = np.abs(rng.normal(4.0, 1.5, n))
    new["noise_factor"] = np.exp(rng.normal(0.0, 0.35, n))  # muscle tremor, skin preparation
    # Drawn last, so that the draws above do not depend on the visit knob.
    new["electrode_sd"] = np.full(n, scales.visit * ELECTRODE_SD_SPACINGS)
    base = base.copy()
    for name, sd in SHAPE_VISIT_SD.items():
        latent = SHAPE_LATENTS[name]
        base[name] = (
            base[name].to_numpy()
            + scales.age * latent.age_slope * (age - REFERENCE_AGE_YEARS)
            + scales.sex * latent.male_delta * (male - 0.5)
            + scales.visit * sd * rng.standard_normal(n)
        )
    return pd.concat(
        [pd.DataFrame({"patient_row": new.pop("patient_row")}), base, pd.DataFrame(new)], axis=1
    )


def _apply_rhythm_conditions(
    traits: dict[str, np.ndarray],
    flags: dict[str, np.ndarray],
    u: list[np.ndarray],
    rng: np.random.Generator,
) -> None:
    """Interval and rate changes of 1AVB, AF, the bundle-branch blocks and LVH (in place)."""
    n = len(traits["pr_ms"])
    # 1AVB: PR > 200 ms (Aro 2014); prolonged by 45-110 ms.
    traits["pr_ms"] = np.where(
        flags["1AVB"], np.maximum(traits["pr_ms"] + 45 + 65 * u[0], 205.0), traits["pr_ms"]
    )
    # AF: ventricular rate of a treated or untreated patient (80-120 bpm typical,
    # 100-180 untreated), irregular RR with CV 12-25 %, f waves 4-9 Hz (6.0 +- 1.1 Hz).
    af = flags["AFIB"]
    af_rate = np.clip(78 + 40 * u[1] + 6 * rng.standard_normal(n), 55, 150)
    traits["heart_rate_bpm"] = np.where(af, af_rate, traits["heart_rate_bpm"])
    traits["rr_cv"] = np.where(af, 0.12 + 0.13 * u[2], 0.0)
    traits["fwave_mv"] = np.where(af, 0.03 + 0.06 * u[3], 0.0)
    traits["fwave_hz"] = np.where(af, np.clip(6.0 + 1.65 * (2 * u[0] - 1), 4.0, 9.0), 0.0)
    traits["p_amplitude"] = np.where(af, 0.0, traits["p_amplitude"])
    # Bundle-branch blocks widen the QRS: complete >= 120 ms, incomplete 100-120 ms (AHA 2009).
    qrs = traits["qrs_ms"]
    traits["qrs_normal_ms"] = qrs
    qrs = np.where(flags["CRBBB"], np.maximum(qrs + 35 + 15 * u[1], 122.0), qrs)
    qrs = np.where(flags["IRBBB"], np.clip(qrs + 14, 100.0, 118.0), qrs)
    qrs = np.where(flags["CLBBB"], np.maximum(qrs + 45 + 20 * u[2], 125.0), qrs)
    traits["qrs_ms"] = np.where(flags["LVH"] & (qrs < 118), qrs + 8.0, qrs)
