import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from cape.heads import MLPClassifierHead, MLPRegressorHead, MultiLabelHead
from cape.stats import auroc, macro_auroc

torch.set_num_threads(1)

FAST = {
    "hidden_sizes": (16, 8),
    "learning_rate": 1e-2,
    "batch_size": 64,
    "max_epochs": 60,
    "patience": 8,
}


def linear_data(seed: int, n: int, n_features: int = 10, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    weights = np.random.default_rng(99).normal(size=n_features)
    features = rng.normal(size=(n, n_features))
    signal = features @ weights / np.linalg.norm(weights)
    return features, signal, 50.0 + 8.0 * signal + noise * rng.normal(size=n)


@pytest.fixture(scope="module")
def regression_fit():
    X, _, y = linear_data(0, 300)
    X_val, _, y_val = linear_data(1, 100)
    X_test, _, y_test = linear_data(2, 200)
    head = MLPRegressorHead(**FAST, seed=0).fit(X, y, X_val, y_val)
    return head, (X, y, X_val, y_val, X_test, y_test)


def test_regressor_learns_a_linear_relation(regression_fit) -> None:
    head, (_, y, _, _, X_test, y_test) = regression_fit
    mae = np.mean(np.abs(head.predict(X_test) - y_test))
    mean_predictor_mae = np.mean(np.abs(y.mean() - y_test))
    assert mae < 0.3 * mean_predictor_mae
    assert head.predict(X_test).shape == (200,)


def test_regressor_standardises_with_training_statistics(regression_fit) -> None:
    head, (X, y, _, _, _, _) = regression_fit
    np.testing.assert_allclose(head.scaler_.mean_, X.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert head.target_mean_ == pytest.approx(y.mean())
    assert head.target_scale_ == pytest.approx(y.std())


def test_internal_hold_out_excludes_validation_rows_from_statistics() -> None:
    X, _, y = linear_data(3, 200)
    head = MLPRegressorHead(**FAST, validation_fraction=0.25, seed=4).fit(X, y)
    X_train, _, _, _ = train_test_split(X, y, test_size=0.25, random_state=4)
    np.testing.assert_allclose(head.scaler_.mean_, X_train.mean(axis=0), rtol=1e-4, atol=1e-6)
    assert not np.allclose(head.scaler_.mean_, X.mean(axis=0), atol=1e-6)


def test_early_stopping_restores_best_epoch() -> None:
    # Few noisy samples and a large learning rate: the head overfits and validation MAE worsens.
    X, _, y = linear_data(5, 80, n_features=20, noise=6.0)
    X_val, _, y_val = linear_data(6, 80, n_features=20, noise=6.0)
    params = {
        **FAST,
        "hidden_sizes": (64, 64),
        "learning_rate": 3e-2,
        "patience": 5,
        "dropout": 0.0,
        "max_epochs": 200,
    }
    head = MLPRegressorHead(**params).fit(X, y, X_val, y_val)
    scores = [entry["val_score"] for entry in head.history_]
    assert head.stopped_early_
    assert head.best_epoch_ > 1  # the best epoch is neither the first nor the last
    assert head.best_epoch_ == int(np.argmin(scores)) + 1
    assert head.n_epochs_ == head.best_epoch_ + 5
    restored = np.mean(np.abs(head.predict(X_val) - y_val))
    assert restored == pytest.approx(min(scores), rel=1e-5)
    assert restored < scores[-1]
    assert head.best_score_ == pytest.approx(min(scores))


def test_same_seed_same_model_other_seed_other_model() -> None:
    X, _, y = linear_data(7, 150)
    X_val, _, y_val = linear_data(8, 50)
    params = {**FAST, "max_epochs": 5}
    first = MLPRegressorHead(**params, seed=3).fit(X, y, X_val, y_val).predict(X_val)
    second = MLPRegressorHead(**params, seed=3).fit(X, y, X_val, y_val).predict(X_val)
    other = MLPRegressorHead(**params, seed=4).fit(X, y, X_val, y_val).predict(X_val)
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)


def test_fit_leaves_global_torch_rng_untouched() -> None:
    X, _, y = linear_data(9, 60)
    state = torch.get_rng_state()
    MLPRegressorHead(**{**FAST, "max_epochs": 2}).fit(X, y)
    assert torch.equal(state, torch.get_rng_state())


def test_nan_inputs_raise_clear_errors() -> None:
    X, _, y = linear_data(10, 50)
    bad_X = X.copy()
    bad_X[7, 2] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        MLPRegressorHead(**FAST).fit(bad_X, y)
    bad_y = y.copy()
    bad_y[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLPRegressorHead(**FAST).fit(X, bad_y)
    with pytest.raises(ValueError, match="X_val"):
        MLPRegressorHead(**FAST).fit(X, y, bad_X, y)
    with pytest.raises(ValueError, match="not fitted"):
        MLPRegressorHead().predict(X)


def test_std_floor_limits_extrapolation_on_a_shifted_near_constant_unit() -> None:
    X, _, y = linear_data(11, 300)
    X[:, 0] = 1e-4 * np.random.default_rng(0).normal(size=300)  # nearly constant in training
    X_test, _, _ = linear_data(12, 100)
    X_test[:, 0] = 0.0
    shifted = X_test.copy()
    shifted[:, 0] = 0.05  # 500 training SDs away without the floor
    changes = {}
    for floor in (0.1, 0.0):
        head = MLPRegressorHead(**FAST, relative_std_floor=floor, validation_fraction=0.2).fit(X, y)
        changes[floor] = np.mean(np.abs(head.predict(shifted) - head.predict(X_test)))
    assert changes[0.1] < 1.0  # years; target SD is ~8
    assert changes[0.0] > 10 * changes[0.1]


def test_no_validation_trains_fixed_epochs() -> None:
    X, _, y = linear_data(13, 80)
    head = MLPRegressorHead(**{**FAST, "max_epochs": 4}, validation_fraction=0.0).fit(X, y)
    assert head.n_epochs_ == 4 and head.best_epoch_ == 4 and head.best_score_ is None
    assert all(entry["val_score"] is None for entry in head.history_)


def test_classifier_learns_with_string_labels() -> None:
    X, signal, _ = linear_data(14, 300)
    X_val, signal_val, _ = linear_data(15, 200)
    y, y_val = np.where(signal > 0, "F", "M"), np.where(signal_val > 0, "F", "M")
    head = MLPClassifierHead(**FAST).fit(X, y, X_val, y_val)
    assert head.classes_.tolist() == ["F", "M"]
    proba = head.predict_proba(X_val)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert auroc(y_val == "M", proba[:, 1]) > 0.95
    assert np.mean(head.predict(X_val) == y_val) > 0.85
    assert head.best_score_ == pytest.approx(max(e["val_score"] for e in head.history_))
    np.testing.assert_allclose(head.decision_function(X_val) > 0, proba[:, 1] > 0.5)


def test_classifier_rejects_bad_labels() -> None:
    X, signal, _ = linear_data(16, 60)
    y = (signal > 0).astype(int)
    with pytest.raises(ValueError, match="exactly two classes"):
        MLPClassifierHead(**FAST).fit(X, np.zeros(60))
    with pytest.raises(ValueError, match="single class"):
        MLPClassifierHead(**FAST).fit(X, y, X[:5], np.ones(5, dtype=int))


def test_multilabel_head_learns_and_tolerates_a_constant_label() -> None:
    X, _, _ = linear_data(17, 300)
    X_val, _, _ = linear_data(18, 150)

    def labels(features: np.ndarray) -> np.ndarray:
        out = np.stack(
            [features[:, 0] > 0, features[:, 1] + features[:, 2] > 0.5, features[:, 3] < -1], axis=1
        )
        return np.column_stack([out, np.zeros(len(features))]).astype(int)  # last label: one class

    head = MultiLabelHead(**FAST).fit(X, labels(X), X_val, labels(X_val))
    proba = head.predict_proba(X_val)
    assert proba.shape == (150, 4)
    assert head.constant_labels_.tolist() == [3]
    assert macro_auroc(labels(X_val), proba) > 0.9
    assert set(np.unique(head.predict(X_val))) <= {0, 1}


def test_heads_follow_sklearn_conventions() -> None:
    head = MLPRegressorHead(hidden_sizes=(8,), seed=5)
    copy = clone(head)
    assert copy.get_params() == head.get_params()
    assert not hasattr(copy, "model_")
    with pytest.raises(ValueError, match="dropout"):
        MLPRegressorHead(dropout=1.5).fit(np.zeros((4, 2)), np.arange(4.0))


def test_divergence_is_reported() -> None:
    X, _, y = linear_data(19, 60)
    with pytest.raises(ValueError, match="diverged"):
        MLPRegressorHead(**{**FAST, "learning_rate": 1e12, "max_epochs": 20}).fit(X, y)


def test_heads_default_to_plain_z_scoring() -> None:
    from cape.heads import LinearProbe

    assert MLPRegressorHead().relative_std_floor == 0.0
    assert MLPClassifierHead().relative_std_floor == 0.0
    assert LinearProbe().relative_std_floor == 0.0
    X, _, y = linear_data(21, 120)
    head = MLPRegressorHead(**{**FAST, "max_epochs": 2}, validation_fraction=0.0).fit(X, y)
    np.testing.assert_allclose(head.scaler_.scale_, X.std(axis=0))


def test_age_sigmoid_target_transform_and_inverse() -> None:
    from cape.heads.mlp import age_to_sigmoid_target, sigmoid_output_to_age

    ages = np.array([7.0, 57.0, 107.0, 32.0])
    np.testing.assert_allclose(age_to_sigmoid_target(ages), [0.0, 0.5, 1.0, 0.25])
    np.testing.assert_allclose(sigmoid_output_to_age(age_to_sigmoid_target(ages)), ages)


def test_age_sigmoid_head_predicts_years_through_a_sigmoid() -> None:
    X, _, y = linear_data(22, 400)
    X_val, _, y_val = linear_data(23, 150)
    head = MLPRegressorHead(**FAST, target_transform="age-sigmoid").fit(X, y, X_val, y_val)
    raw = head._raw_predict(X_val)[:, 0]
    predictions = head.predict(X_val)
    # Known answer: prediction = 100 * sigmoid(raw output) + 7.
    np.testing.assert_allclose(predictions, 100.0 / (1.0 + np.exp(-raw)) + 7.0, rtol=1e-10)
    assert np.all((predictions > 7.0) & (predictions < 107.0))
    mae = np.mean(np.abs(predictions - y_val))
    assert mae < 0.6 * np.mean(np.abs(y_val - y.mean()))  # learns, not the mean predictor
    assert not hasattr(head, "target_mean_")
    with pytest.raises(ValueError, match="target_transform"):
        MLPRegressorHead(target_transform="log").fit(X, y)
    with pytest.raises(ValueError, match="regression"):
        MLPClassifierHead(target_transform="age-sigmoid").fit(X, np.where(y > 50, 1, 0))
