"""Truth probes (cape.simulator.probe): a feature set that holds a target scores high on it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cape.simulator.probe import TARGETS, probe_scores


def test_probes_see_what_the_features_hold_and_nothing_else() -> None:
    rng = np.random.default_rng(0)
    n = 400
    truth = pd.DataFrame({t: rng.normal(size=n) for t in TARGETS})
    truth["female"] = rng.integers(0, 2, n)
    truth["patient_id"] = np.arange(n) // 2
    # Features: age and heart rotation z plus noise, and a sex offset.
    features = np.column_stack(
        [
            truth["age"] + 0.1 * rng.normal(size=n),
            truth["heart_rot_z_deg"] + 0.1 * rng.normal(size=n),
            truth["female"] + 0.5 * rng.normal(size=n),
            rng.normal(size=(n, 5)),
        ]
    )
    scores = probe_scores(features, truth, truth["patient_id"].to_numpy())
    assert scores["age"] > 0.95 and scores["heart_rot_z_deg"] > 0.95
    assert scores["pr_ms"] < 0.05 and scores["qrs_elevation_deg"] < 0.05
    assert scores["sex_auroc"] > 0.8


def test_cue_retrieval_finds_the_cues_that_identify_patients() -> None:
    """Patients differ only in cues ``a0..a3`` (visit noise 1 % of the patient spread:
    in 4-D the nearest of 127 other patients lies ~0.3 SD away, the same patient's
    other ECG ~0.02); ``b0..b3`` are pure noise, so retrieval from them is at chance
    (1 / 128 = 0.008; with 2,000 draws its SE is ~0.002). Bugs this catches: the positive
    drawn from another patient, the anchor among its negatives, cues not standardised
    (the b's scale 1e-3 would then vanish from ``all`` instead of diluting it)."""
    from cape.simulator.probe import cue_retrieval

    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(300), 2)
    columns = {"patient_id": patients.astype(str)}
    for k in range(4):
        columns[f"a{k}"] = rng.normal(size=300)[patients] * 100.0 + rng.normal(size=600)
        columns[f"b{k}"] = rng.normal(size=600) * 1e-3
    truth = pd.DataFrame(columns)
    a = tuple(f"a{k}" for k in range(4))
    b = tuple(f"b{k}" for k in range(4))
    scores = cue_retrieval(truth, {"a": a, "b": b}, draws=2000)
    assert scores["a"] > 0.98
    assert scores["b"] < 0.03
    assert scores["all"] < 0.5  # four standardised noise dimensions swamp the signal
