import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from cape.heads import LinearProbe
from cape.stats import auroc


def make_data(seed: int, n: int = 200):
    rng = np.random.default_rng(seed)
    features = rng.normal(2.0, 3.0, size=(n, 6))
    signal = features[:, 0] - 0.5 * features[:, 1]
    return features, signal + rng.normal(size=n)


def test_ridge_probe_matches_sklearn_on_standardised_features() -> None:
    X, y = make_data(0)
    X_test, _ = make_data(1)
    probe = LinearProbe(task="regression", C=0.5, relative_std_floor=0.0).fit(X, y)
    scaler = StandardScaler().fit(X)
    reference = Ridge(alpha=2.0).fit(scaler.transform(X), y)
    np.testing.assert_allclose(
        probe.predict(X_test), reference.predict(scaler.transform(X_test)), rtol=1e-4, atol=1e-4
    )
    with pytest.raises(ValueError, match="predict_proba"):
        probe.predict_proba(X_test)


def test_logistic_probe_matches_sklearn_and_keeps_label_types() -> None:
    X, y = make_data(2)
    X_test, y_test = make_data(3)
    labels = np.where(y > 0.5, "M", "F")
    probe = LinearProbe(task="binary", C=2.0, relative_std_floor=0.0).fit(X, labels)
    scaler = StandardScaler().fit(X)
    reference = LogisticRegression(C=2.0, max_iter=1000).fit(scaler.transform(X), labels == "M")
    expected = reference.predict_proba(scaler.transform(X_test))[:, 1]
    np.testing.assert_allclose(probe.predict_proba(X_test)[:, 1], expected, rtol=1e-3, atol=1e-4)
    assert set(probe.predict(X_test)) <= {"F", "M"}
    assert auroc(y_test > 0.5, probe.predict_proba(X_test)[:, 1]) > 0.9


def test_probe_chooses_c_on_validation() -> None:
    X, y = make_data(4, n=120)
    X_val, y_val = make_data(5, n=120)
    candidates = (1e-4, 1e-2, 1.0)
    probe = LinearProbe(task="regression", C=candidates).fit(X, y, X_val, y_val)
    maes = probe.validation_scores_
    assert set(maes) == set(candidates)
    assert probe.C_ == min(maes, key=maes.get)
    assert probe.C_ != 1e-4  # a near-zero C shrinks every weight away
    with pytest.raises(ValueError, match="X_val"):
        LinearProbe(task="regression", C=candidates).fit(X, y)


def test_multilabel_probe_handles_a_constant_label() -> None:
    X, y = make_data(6)
    targets = np.column_stack([y > 0, X[:, 2] > 2.0, np.zeros(len(y))]).astype(int)
    probe = LinearProbe(task="multilabel").fit(X, targets)
    proba = probe.predict_proba(X)
    assert proba.shape == (200, 3)
    assert probe.constant_labels_.tolist() == [2]
    np.testing.assert_array_equal(proba[:, 2], 0.0)
    assert auroc(targets[:, 0], proba[:, 0]) > 0.9


def test_probe_rejects_bad_input() -> None:
    X, y = make_data(7, n=20)
    with pytest.raises(ValueError, match="unknown task"):
        LinearProbe(task="ordinal").fit(X, y)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        LinearProbe(task="regression", C=0.0).fit(X, y)
    y[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LinearProbe(task="regression").fit(X, y)
