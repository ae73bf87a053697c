"""The dipole model: geometry, templates, overlap-add and lead algebra against naive references."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from cape.leads import limb_leads_from_i_ii
from cape.simulator.dipole import (
    DOWER,
    beat_template,
    beat_times_ms,
    direction,
    lead_matrices,
    measured_axis_deg,
    overlap_add,
    project,
    render_dipole,
    rotation_matrices,
    rr_intervals,
    twelve_leads,
)
from cape.simulator.morphology import beat_model
from cape.simulator.physiology import EffectScales, sample_ecgs, sample_patients
from cape.simulator.presets import demo

from .ecg_features import heart_rate_bpm


def _ecgs(n_patients: int = 24, seed: int = 0, **conditions: float) -> pd.DataFrame:
    cohort = (
        demo()
        .cohort("harbor")
        .model_copy(update={"conditions": conditions or demo().cohort("harbor").conditions})
    )
    rng = np.random.default_rng(seed)
    patients = sample_patients(cohort, np.ones(n_patients, dtype=np.int64), rng, EffectScales())
    return sample_ecgs(patients, cohort, rng, EffectScales())


def test_direction_is_a_unit_vector_along_the_frank_axes() -> None:
    np.testing.assert_allclose(direction(0.0, 0.0), [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(direction(90.0, 0.0), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(direction(0.0, 90.0), [0, 0, 1], atol=1e-12)
    vectors = direction(np.linspace(-180, 180, 7), np.linspace(-80, 80, 7))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=-1), 1.0)


def test_rotation_matrices_match_scipy() -> None:
    angles = np.random.default_rng(1).uniform(-30, 30, (5, 3))
    ours = rotation_matrices(angles[:, 0], angles[:, 1], angles[:, 2])
    reference = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()  # extrinsic x, y, z
    np.testing.assert_allclose(ours, reference, atol=1e-12)


def test_twelve_leads_follow_einthoven_and_goldberger() -> None:
    recorded = np.random.default_rng(2).normal(size=(3, 8, 50))
    leads = twelve_leads(recorded)
    limb = limb_leads_from_i_ii(recorded[:, 0], recorded[:, 1])
    for k, name in enumerate(["III", "aVR", "aVL", "aVF"], start=2):
        np.testing.assert_allclose(leads[:, k], limb[name])
    np.testing.assert_array_equal(leads[:, 6:], recorded[:, 2:])


def test_beat_template_equals_a_naive_sum_of_gaussians() -> None:
    model = beat_model(_ecgs(4))
    template, t_ms = beat_template(model, 500.0)
    naive = np.zeros_like(template)
    for row in range(4):
        for wave in range(model.centre_ms.shape[1]):
            for k, t in enumerate(t_ms):
                c = model.centre_ms[row, wave]
                sigma = model.sigma_left_ms[row, wave] if t < c else model.sigma_right_ms[row, wave]
                naive[row, :, k] += model.vector_mv[row, wave] * np.exp(
                    -0.5 * ((t - c) / sigma) ** 2
                )
    np.testing.assert_allclose(template, naive, atol=1e-12)


def test_overlap_add_equals_direct_evaluation_at_every_sample() -> None:
    model = beat_model(_ecgs(3))
    fs, n_samples = 250.0, 2500
    template, t_ms = beat_template(model, fs)
    beats = beat_times_ms(model, n_samples * 1000 / fs, np.random.default_rng(3))
    out = overlap_add(template, int(np.sum(t_ms < 0)), beats, fs, n_samples)
    sample_ms = np.arange(n_samples) * 1000 / fs
    direct = np.zeros_like(out)
    for row in range(3):
        for r_ms in np.rint(beats[row] * fs / 1000) * 1000 / fs:  # R peaks on the sample grid
            offset = sample_ms[None, :] - r_ms - model.centre_ms[row][:, None]
            sigma = np.where(
                offset < 0, model.sigma_left_ms[row][:, None], model.sigma_right_ms[row][:, None]
            )
            direct[row] += model.vector_mv[row].T @ np.exp(-0.5 * (offset / sigma) ** 2)
    # The template window cuts Gaussian tails below 0.01 µV.
    np.testing.assert_allclose(out, direct, atol=1e-5)


def test_rr_series_reach_their_targets() -> None:
    ecgs = _ecgs(400)
    model = beat_model(ecgs)
    rr = rr_intervals(model, 400, np.random.default_rng(4))
    sinus = ~model.af
    rmssd = np.sqrt(np.mean(np.diff(rr[sinus], axis=1) ** 2, axis=1))
    assert np.median(rmssd / model.rmssd_ms[sinus]) == pytest.approx(1.0, abs=0.15)
    np.testing.assert_allclose(rr.mean(axis=1)[sinus], model.rr_ms[sinus], rtol=0.05)
    fibrillating = dataclasses.replace(
        model, af=np.ones(len(model), dtype=bool), rr_cv=np.full(len(model), 0.2)
    )
    rr = rr_intervals(fibrillating, 400, np.random.default_rng(5))
    assert np.median(rr.std(axis=1) / rr.mean(axis=1)) == pytest.approx(0.2, abs=0.03)


def test_rendered_rhythm_has_the_intended_rate() -> None:
    ecgs = _ecgs(16, AFIB=0.0)
    model = beat_model(ecgs)
    fs = 500.0
    dipole, axis = render_dipole(model, fs, 5000, np.random.default_rng(6))
    lead_ii = project(dipole, np.broadcast_to(DOWER, (16, 8, 3)))[:, 1]
    measured = np.array([heart_rate_bpm(lead, fs) for lead in lead_ii])
    np.testing.assert_allclose(measured, ecgs["heart_rate_bpm"], atol=5.0)
    assert np.all((axis > -90) & (axis < 150))


def test_measured_axis_of_a_single_force_is_its_projection() -> None:
    model = beat_model(_ecgs(2))
    model.vector_mv[:] = 0.0
    model.vector_mv[:, 2] = direction(np.array([30.0, -50.0]), 0.0)  # the main QRS force only
    template, t_ms = beat_template(model, 1000.0)
    vector = model.vector_mv[:, 2]
    lead_i, lead_ii = vector @ DOWER[0], vector @ DOWER[1]
    expected = np.degrees(np.arctan2(lead_ii - lead_i / 2, lead_i))
    np.testing.assert_allclose(measured_axis_deg(model, template, t_ms), expected, atol=1e-6)


def test_lead_matrices_jitter_around_dower() -> None:
    exact = lead_matrices(3, np.random.default_rng(7), electrode_sd=0.0, gain_sd=0.0)
    np.testing.assert_array_equal(exact, np.broadcast_to(DOWER, (3, 8, 3)))
    jittered = lead_matrices(2000, np.random.default_rng(8))
    assert np.abs(jittered.mean(axis=0) - DOWER).max() < 0.02
    assert jittered[:, 2:].std(axis=0).max() > 0.02  # precordial placement varies
