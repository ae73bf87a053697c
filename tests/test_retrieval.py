"""Same-patient retrieval (cape.diagnostics.retrieval) against a naive loop and known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.preprocessing import StandardScaler

from cape.cli import main
from cape.diagnostics.retrieval import draw_retrieval_sets, patient_retrieval
from cape.embed import write_features


def _cohorts(n_patients: int = 60, ecgs: int = 3, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    patient = np.repeat(np.arange(n_patients * k), ecgs)
    cohort = np.repeat(np.arange(k), n_patients * ecgs)
    return np.array([f"c{c}/p{p}" for c, p in zip(cohort, patient, strict=True)]), np.array(
        [f"c{c}" for c in cohort]
    )


def test_draws_respect_patients_and_cohorts() -> None:
    patients, cohorts = _cohorts()
    draws = draw_retrieval_sets(patients, cohorts, n_draws=301, n_negatives=40, seed=3)
    assert draws.anchors.shape == (301,) and draws.mixed.shape == (301, 40)
    # Spread equally over the three cohorts (301 = 101 + 100 + 100).
    assert sorted(np.unique(cohorts[draws.anchors], return_counts=True)[1]) == [100, 100, 101]
    for i, anchor in enumerate(draws.anchors):
        assert patients[draws.positives[i]] == patients[anchor] != ""
        assert draws.positives[i] != anchor
        for negatives in (draws.mixed[i], draws.same_cohort[i]):
            assert len(set(negatives)) == negatives.size  # without replacement
            assert not np.any(patients[negatives] == patients[anchor])
        assert np.all(cohorts[draws.same_cohort[i]] == cohorts[anchor])
    # Mixed negatives come from every cohort (2/3 from the others on average).
    other = cohorts[draws.mixed] != cohorts[draws.anchors][:, None]
    assert 0.6 < other.mean() < 0.73
    again = draw_retrieval_sets(patients, cohorts, n_draws=301, n_negatives=40, seed=3)
    np.testing.assert_array_equal(again.mixed, draws.mixed)


def test_equals_a_naive_loop() -> None:
    patients, cohorts = _cohorts(n_patients=30)
    rng = np.random.default_rng(0)
    patient_codes = np.unique(patients, return_inverse=True)[1]
    features = rng.normal(size=(patient_codes.max() + 1, 8))[patient_codes] + rng.normal(
        scale=1.5, size=(patients.size, 8)
    )
    draws = draw_retrieval_sets(patients, cohorts, n_draws=200, n_negatives=20, seed=1)
    result = patient_retrieval(features, draws, n_bootstrap=200)
    z = StandardScaler().fit_transform(features)
    expected = {}
    for name, negatives in (("mixed", draws.mixed), ("same", draws.same_cohort)):
        wins = []
        for anchor, positive, row in zip(draws.anchors, draws.positives, negatives, strict=True):
            sims = cosine_similarity(z[[anchor]], z[[positive, *row]])[0]
            wins.append(sims[0] > sims[1:].max())
        expected[name] = np.mean(wins)
    assert result.top1_mixed == pytest.approx(expected["mixed"], abs=1e-12)
    assert result.top1_same_cohort == pytest.approx(expected["same"], abs=1e-12)
    assert 0.05 < result.top1_mixed < 0.95  # neither trivial nor hopeless: a real comparison
    assert result.top1_mixed_low <= result.top1_mixed <= result.top1_mixed_high


def test_known_answers_identity_shortcut_and_noise() -> None:
    patients, cohorts = _cohorts(n_patients=80)
    rng = np.random.default_rng(5)
    patient_codes = np.unique(patients, return_inverse=True)[1]
    cohort_codes = np.unique(cohorts, return_inverse=True)[1]
    draws = draw_retrieval_sets(patients, cohorts, n_draws=900, n_negatives=63, seed=2)

    # Strong patient identity, no cohort information: near-perfect either way, no gap.
    identity = rng.normal(size=(patient_codes.max() + 1, 16))[patient_codes]
    identity = identity + 0.1 * rng.normal(size=identity.shape)
    result = patient_retrieval(identity, draws, seed=1)
    assert result.top1_mixed > 0.97 and result.top1_same_cohort > 0.97
    assert result.gap_low <= 0.0 <= result.gap_high

    # A strong cohort signature and a weak identity: other cohorts are ruled out,
    # the anchor's own cohort is not. Mixed retrieval must beat same-cohort retrieval.
    signature = 6.0 * rng.normal(size=(3, 16))[cohort_codes]
    shortcut = signature + 0.6 * identity + rng.normal(size=identity.shape)
    result = patient_retrieval(shortcut, draws, seed=1)
    assert result.gap_low > 0.05

    # Noise: chance level (1/64), no gap.
    noise = rng.normal(size=identity.shape)
    result = patient_retrieval(noise, draws, seed=1)
    assert result.chance == pytest.approx(1 / 64)
    assert result.top1_mixed_low <= 1 / 64 + 0.01 and result.top1_mixed < 0.04
    assert result.gap_low <= 0.0 <= result.gap_high


def test_rejects_impossible_requests() -> None:
    patients, cohorts = _cohorts(n_patients=5)
    with pytest.raises(ValueError, match="no cohort"):
        draw_retrieval_sets(patients, cohorts, n_negatives=500)
    draws = draw_retrieval_sets(patients, cohorts, n_draws=10, n_negatives=5)
    with pytest.raises(ValueError, match="index row"):
        patient_retrieval(np.zeros((3, 4)), draws)


def test_command_compares_feature_sets_on_the_same_draws(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patients, cohorts = _cohorts(n_patients=50)
    index = pd.DataFrame(
        {
            "record_id": [f"r{i}" for i in range(patients.size)],
            "patient_id": [p.split("/")[1] for p in patients],
            "cohort": cohorts,
            "split": "train",
        }
    )
    rng = np.random.default_rng(0)
    codes = np.unique(patients, return_inverse=True)[1]
    identity = rng.normal(size=(codes.max() + 1, 8))[codes] + 0.1 * rng.normal(size=(codes.size, 8))
    write_features(tmp_path / "identity", identity.astype(np.float32), index, {})
    write_features(tmp_path / "noise", rng.normal(size=identity.shape), index, {})
    out = tmp_path / "retrieval.json"
    args = ["retrieval", "--features", str(tmp_path / "identity"), str(tmp_path / "noise")]
    assert main([*args, "--negatives", "31", "--draws", "300", "--out", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [r["n_draws"] for r in records] == [300, 300]
    assert records[0]["top1_mixed"] > 0.95 > 0.2 > records[1]["top1_mixed"]
    assert "chance 0.031" in capsys.readouterr().out
    write_features(tmp_path / "other", identity[:-3], index.iloc[:-3], {})
    assert (
        main(["retrieval", "--features", str(tmp_path / "identity"), str(tmp_path / "other")]) == 1
    )
    assert "holds other ECGs" in capsys.readouterr().err
