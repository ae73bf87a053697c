import numpy as np
import pytest

from cape.heads import Standardizer, floored_std


def test_floored_std_raises_small_stds_to_fraction_of_median() -> None:
    std = np.array([1.0, 2.0, 3.0, 1e-4, 0.0])
    out = floored_std(std, relative_floor=0.1, absolute_floor=1e-6)
    # Median over the varying features (1e-4 counts, 0 does not): median(1, 2, 3, 1e-4) = 1.5.
    np.testing.assert_allclose(out, [1.0, 2.0, 3.0, 0.15, 0.15])


def test_floored_std_dead_units_do_not_pull_the_reference_down() -> None:
    std = np.concatenate(
        [np.zeros(10), np.full(3, 2.0)]
    )  # most units dead, as in an untrained encoder
    out = floored_std(std, relative_floor=0.1)
    np.testing.assert_allclose(out[:10], 0.2)


def test_floored_std_zero_relative_floor_is_plain_std_constant_features_unscaled() -> None:
    std = np.array([0.5, 1e-5, 1e-7, 0.0])
    # As scikit-learn's StandardScaler: constant features are divided by 1.
    np.testing.assert_allclose(
        floored_std(std, relative_floor=0.0, absolute_floor=1e-6), [0.5, 1e-5, 1.0, 1.0]
    )
    with pytest.raises(ValueError):
        floored_std(std, absolute_floor=0.0)


def test_standardizer_uses_training_statistics_only() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(200, 4))
    test = rng.normal(-5.0, 7.0, size=(50, 4))
    scaler = Standardizer(relative_floor=0.0).fit(train)
    np.testing.assert_allclose(scaler.mean_, train.mean(axis=0))
    np.testing.assert_allclose(scaler.std_, train.std(axis=0))
    expected = (test - train.mean(axis=0)) / train.std(axis=0)
    np.testing.assert_allclose(scaler.transform(test), expected, rtol=1e-5)
    standardised = scaler.fit_transform(train)
    np.testing.assert_allclose(standardised.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(standardised.std(axis=0), 1.0, rtol=1e-4)


def test_standardizer_flags_near_constant_features() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(size=(100, 3))
    train[:, 1] = 1e-5 * rng.normal(size=100)  # nearly constant post-ReLU-like unit
    scaler = Standardizer(relative_floor=0.1).fit(train)
    assert scaler.floored_.tolist() == [False, True, False]
    shifted = np.zeros((1, 3))
    shifted[0, 1] = 0.05  # 5000 training SDs before the floor
    assert abs(scaler.transform(shifted)[0, 1]) < 1.0
    with pytest.raises(ValueError, match="features"):
        scaler.transform(np.zeros((2, 5)))


def test_default_is_plain_z_scoring_as_standard_scaler() -> None:
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(2)
    train = rng.normal(size=(300, 4)) * [1.0, 1e-4, 3.0, 1.0]
    train[:, 3] = 2.0  # constant in training
    test = rng.normal(size=(20, 4))
    scaler = Standardizer().fit(train)
    assert scaler.relative_floor == 0.0
    reference = StandardScaler().fit(train)
    np.testing.assert_allclose(scaler.scale_, reference.scale_, rtol=1e-12)
    np.testing.assert_allclose(scaler.transform(test), reference.transform(test), rtol=1e-5)
    # The nearly constant unit is NOT damped by default: 0.05 is ~500 training SDs.
    shifted = np.zeros((1, 4))
    shifted[0, 1] = train[:, 1].mean() + 0.05
    assert abs(scaler.transform(shifted)[0, 1]) > 100
