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
