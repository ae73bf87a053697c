"""The linear-probe learning control (cape.protocols.learning_probe) on constructed features.

Features are built so the answer is known: a "pretrained" set that carries the label plus
noise against an "untrained" twin of pure noise must pass, the reverse must fail. The
bootstrap interval is checked against a naive loop over the same patient resamples with
scikit-learn's metrics, and the penalty choice against a direct grouped grid search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, roc_auc_score
from sklearn.model_selection import GroupKFold

from cape.errors import CapeError
from cape.protocols.featuresets import FeatureSet
from cape.protocols.learning_probe import (
    RIDGE_ALPHAS,
    cluster_bootstrap,
    fit_probe,
    learning_probe_table,
)
from cape.report.collect import RunData
from cape.report.controls import FAILS, INCONCLUSIVE, PASSES, controls_from_data
from cape.stats import mean_absolute_error as cape_mae


def _index(n_patients: int = 120, visits: int = 2, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, n_patients)
    sex = rng.integers(0, 2, n_patients)
    split = np.array(["train"] * 70 + ["val"] * 10 + ["test"] * (n_patients - 80))
    rows = [
        {
            "record_id": f"r{p}-{v}",
            "patient_id": f"p{p}",
            "cohort": "A",
            "split": split[p],
            "age": age[p] + rng.normal(0, 1.0),
            "sex": "M" if sex[p] else "F",
        }
        for p in range(n_patients)
        for v in range(visits)
    ]
    return pd.DataFrame(rows)


def _features(index: pd.DataFrame, signal: float, seed: int, dim: int = 8) -> np.ndarray:
    """``dim`` noise columns; the first carries age and the second sex, times ``signal``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(index), dim))
    x[:, 0] += signal * (index["age"].to_numpy() - 50.0) / 15.0
    x[:, 1] += signal * (index["sex"] == "M").to_numpy() * 2.0
    return x.astype(np.float32)


def _set(model: str, seed: int, x: np.ndarray, baseline: str = "") -> FeatureSet:
    return FeatureSet(model, seed, Path(model), baseline, x)


def test_informative_features_pass_and_noise_fails() -> None:
    index = _index()
    sets = [
        _set("good", 0, _features(index, 2.0, 1)),
        _set("bad", 0, _features(index, 0.0, 2)),
        _set("untrained", 0, _features(index, 1.0, 3), "untrained"),
    ]
    table = learning_probe_table(sets, index, "A", n_resamples=300)
    assert set(table["task"]) == {"age", "sex"}
    assert (table["n_test"] == 80).all() and (table["n_test_patients"] == 40).all()
    good = table[table["model"] == "good"].set_index("task")
    assert (good["difference"] > 0).all() and (good["ci_low"] > 0).all()
    bad = table[table["model"] == "bad"].set_index("task")
    assert (bad["difference"] < 0).all() and (bad["ci_high"] < 0).all()
    # The sign convention: age MAE lower is better, so difference = twin - model.
    age = table[table["task"] == "age"].set_index("model")
    assert age.loc["good", "difference"] == pytest.approx(
        age.loc["untrained", "value"] - age.loc["good", "value"]
    )
    data = RunData(run_dir=Path("run"), learning_probe=table)
    controls = controls_from_data(data, None, ["good", "bad"])
    verdicts = {(r.model, r.task): r.verdict for r in controls.itertuples()}
    assert verdicts == {
        ("good", "age"): PASSES,
        ("good", "sex"): PASSES,
        ("bad", "age"): FAILS,
        ("bad", "sex"): FAILS,
    }


def test_each_seed_is_paired_with_its_own_twin() -> None:
    index = _index()
    sets = [
        _set("m", 0, _features(index, 2.0, 1)),
        _set("m", 1, _features(index, 0.0, 2)),
        _set("untrained", 0, _features(index, 0.5, 3), "untrained"),
        _set("untrained", 1, _features(index, 1.5, 4), "untrained"),
    ]
    table = learning_probe_table(sets, index, "A", tasks=["age"], n_resamples=200)
    rows = table.set_index(["model", "encoder_seed"])
    assert rows.loc[("m", 0), "twin_seed"] == 0 and rows.loc[("m", 1), "twin_seed"] == 1
    assert rows.loc[("m", 1), "twin_value"] == rows.loc[("untrained", 1), "value"]
    # One seed better, the other worse than its twin: neither passes nor fails.
    data = RunData(run_dir=Path("run"), learning_probe=table)
    [row] = controls_from_data(data, None, ["m"]).itertuples()
    assert row.verdict == INCONCLUSIVE and row.control == "learning-probe"


def test_interval_matches_a_naive_paired_patient_bootstrap() -> None:
    index = _index()
    sets = [
        _set("m", 0, _features(index, 1.0, 1)),
        _set("untrained", 0, _features(index, 0.7, 2), "untrained"),
    ]
    table = learning_probe_table(sets, index, "A", tasks=["age"], n_resamples=400, seed=7)
    row = table[table["model"] == "m"].iloc[0]
    fit = np.flatnonzero(index["split"].isin(["train", "val"]).to_numpy())
    test = np.flatnonzero((index["split"] == "test").to_numpy())
    y = index["age"].to_numpy()
    groups = index["patient_id"].to_numpy()
    predictions = [
        fit_probe(
            "regression", cape_mae, False, fs.features[fit], y[fit], groups[fit], fs.features[test]
        )[0]
        for fs in sets
    ]
    patients = ("A/" + index["patient_id"]).to_numpy()[test]
    naive = []
    for sample in cluster_bootstrap(patients, 400, 7):
        naive.append(
            mean_absolute_error(y[test][sample], predictions[1][sample])
            - mean_absolute_error(y[test][sample], predictions[0][sample])
        )
    low, high = np.quantile(naive, [0.025, 0.975])
    assert row["ci_low"] == pytest.approx(low, rel=1e-9)
    assert row["ci_high"] == pytest.approx(high, rel=1e-9)
    assert row["value"] == pytest.approx(mean_absolute_error(y[test], predictions[0]), rel=1e-12)


def test_sex_probe_auroc_matches_scikit_learn() -> None:
    index = _index()
    sets = [_set("untrained", 0, _features(index, 1.0, 5), "untrained")]
    table = learning_probe_table(sets, index, "A", tasks=["sex"], n_resamples=50)
    fit = np.flatnonzero(index["split"].isin(["train", "val"]).to_numpy())
    test = np.flatnonzero((index["split"] == "test").to_numpy())
    y = (index["sex"] == "M").to_numpy().astype(float)
    from cape.stats import auroc

    scores, _ = fit_probe(
        "binary",
        auroc,
        True,
        sets[0].features[fit],
        y[fit],
        index["patient_id"].to_numpy()[fit],
        sets[0].features[test],
    )
    assert table["value"].iloc[0] == pytest.approx(roc_auc_score(y[test], scores), abs=1e-12)


def test_penalty_is_the_grouped_cv_minimum() -> None:
    index = _index()
    x = _features(index, 0.3, 9, dim=30).astype(np.float64)
    fit = np.flatnonzero(index["split"].isin(["train", "val"]).to_numpy())
    y = index["age"].to_numpy()[fit]
    groups = index["patient_id"].to_numpy()[fit]
    _, chosen = fit_probe("regression", cape_mae, False, x[fit], y, groups, x[fit])
    z = (x[fit] - x[fit].mean(0)) / x[fit].std(0)
    errors = {}
    for alpha in RIDGE_ALPHAS:
        pooled = np.empty(len(y))
        for train, held in GroupKFold(n_splits=5).split(z, y, groups):
            pooled[held] = Ridge(alpha=alpha).fit(z[train], y[train]).predict(z[held])
        errors[alpha] = mean_absolute_error(y, pooled)
    assert chosen == min(errors, key=lambda a: (errors[a], RIDGE_ALPHAS.index(a)))


def test_cluster_bootstrap_keeps_patients_whole() -> None:
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    for sample in cluster_bootstrap(groups, 50, 0):
        drawn = groups[sample]
        counts = pd.Series(drawn).value_counts()
        sizes = {"a": 2, "b": 1, "c": 3}
        assert all(counts[g] % sizes[g] == 0 for g in counts.index)
        assert sum(counts[g] // sizes[g] for g in counts.index) == 3


def test_needs_an_untrained_encoder() -> None:
    index = _index()
    with pytest.raises(CapeError, match="untrained"):
        learning_probe_table([_set("m", 0, _features(index, 1.0, 1))], index, "A")
