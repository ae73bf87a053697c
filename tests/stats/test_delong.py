import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cape.stats import (
    auroc,
    bootstrap_ci,
    bootstrap_indices,
    delong_ci,
    delong_covariance,
    delong_placements,
    delong_test,
)


def heaviside(x: float, y: float) -> float:
    return 1.0 if x > y else 0.5 if x == y else 0.0


def naive_delong(labels: np.ndarray, scores: np.ndarray):
    """DeLong's structural components with double loops, straight from the 1988 paper."""
    positives = [i for i in range(labels.size) if labels[i] == 1]
    negatives = [j for j in range(labels.size) if labels[j] == 0]
    m, n = len(positives), len(negatives)
    k = scores.shape[0]
    v10 = np.zeros((k, m))
    v01 = np.zeros((k, n))
    for r in range(k):
        for a, i in enumerate(positives):
            for b, j in enumerate(negatives):
                psi = heaviside(scores[r, i], scores[r, j])
                v10[r, a] += psi / n
                v01[r, b] += psi / m
    aucs = v10.mean(axis=1)
    s10 = np.zeros((k, k))
    s01 = np.zeros((k, k))
    for r in range(k):
        for s in range(k):
            s10[r, s] = sum((v10[r, a] - aucs[r]) * (v10[s, a] - aucs[s]) for a in range(m)) / (
                m - 1
            )
            s01[r, s] = sum((v01[r, b] - aucs[r]) * (v01[s, b] - aucs[s]) for b in range(n)) / (
                n - 1
            )
    return aucs, v10, v01, s10 / m + s01 / n


def make_two_classifiers(seed: int, n: int, decimals: int | None):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    latent = rng.normal(size=n)
    score_a = labels * 1.0 + latent + 0.5 * rng.normal(size=n)
    score_b = labels * 0.6 + latent + 0.8 * rng.normal(size=n)  # correlated with a via latent
    if decimals is not None:
        score_a, score_b = score_a.round(decimals), score_b.round(decimals)
    return labels, score_a, score_b


@pytest.mark.parametrize(("seed", "decimals"), [(0, None), (1, 1), (2, 0)])
def test_fast_delong_matches_naive_structural_components(seed: int, decimals: int | None) -> None:
    labels, score_a, score_b = make_two_classifiers(seed, 90, decimals)
    scores = np.stack([score_a, score_b])
    aucs, v10, v01 = delong_placements(labels, scores)
    naive_aucs, naive_v10, naive_v01, naive_cov = naive_delong(labels, scores)
    np.testing.assert_allclose(aucs, naive_aucs, atol=1e-12)
    np.testing.assert_allclose(v10, naive_v10, atol=1e-12)
    np.testing.assert_allclose(v01, naive_v01, atol=1e-12)
    _, cov = delong_covariance(labels, scores)
    np.testing.assert_allclose(cov, naive_cov, atol=1e-14)
    for row in range(2):
        assert aucs[row] == pytest.approx(roc_auc_score(labels, scores[row]), abs=1e-12)

    result = delong_test(labels, score_a, score_b)
    naive_var = naive_cov[0, 0] + naive_cov[1, 1] - 2 * naive_cov[0, 1]
    assert result["z"] == pytest.approx((naive_aucs[0] - naive_aucs[1]) / np.sqrt(naive_var))


def test_delong_test_detects_a_real_difference_and_is_symmetric() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=600)
    good = labels * 2.0 + rng.normal(size=600)
    poor = labels * 0.3 + rng.normal(size=600)
    forward, backward = delong_test(labels, good, poor), delong_test(labels, poor, good)
    assert forward["p_value"] < 1e-6
    assert forward["z"] == pytest.approx(-backward["z"])
    assert forward["p_value"] == pytest.approx(backward["p_value"])
    assert forward["n_positive"] + forward["n_negative"] == 600


def test_delong_test_degenerate_identical_scores() -> None:
    labels, score_a, _ = make_two_classifiers(4, 50, None)
    result = delong_test(labels, score_a, score_a)
    assert result["p_value"] == 1.0 and result["difference"] == 0.0 and result["note"]


def test_delong_needs_two_of_each_class() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        delong_test(np.array([1, 0, 0, 0]), np.arange(4.0), np.arange(4.0))


def test_delong_se_agrees_with_bootstrap() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, size=300)
    scores = labels * 1.0 + rng.normal(size=300)
    indices = bootstrap_indices(300, 2000, seed=6)
    boot = np.array([auroc(labels[i], scores[i]) for i in indices])
    result = delong_ci(labels, scores, method="plain")
    assert result["se"] == pytest.approx(boot.std(ddof=1), rel=0.1)
    percentile = bootstrap_ci(auroc, labels, scores, indices)
    assert result["low"] == pytest.approx(percentile["low"], abs=0.015)
    assert result["high"] == pytest.approx(percentile["high"], abs=0.015)


def test_delong_ci_logit_and_plain() -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, size=80)
    scores = labels * 3.0 + rng.normal(size=80)  # AUROC near 1
    plain = delong_ci(labels, scores, method="plain")
    logit = delong_ci(labels, scores, method="logit")
    assert plain["auc"] == logit["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert 0.0 <= plain["low"] < plain["auc"] <= plain["high"] <= 1.0
    assert 0.0 < logit["low"] < logit["auc"] < logit["high"] < 1.0
    # The logit interval is asymmetric: longer below the estimate when AUROC is near 1.
    assert logit["auc"] - logit["low"] > logit["high"] - logit["auc"]
    perfect = delong_ci(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert perfect["low"] == perfect["high"] == 1.0 and perfect["note"]
    with pytest.raises(ValueError, match="method"):
        delong_ci(labels, scores, method="wald")  # type: ignore[arg-type]


# Normal quantiles from the tables (Abramowitz & Stegun 26.2), to 16 digits.
Z_975 = 1.959963984540054
Z_95 = 1.6448536269514722


@pytest.mark.parametrize(("confidence", "z"), [(0.95, Z_975), (0.90, Z_95)])
def test_delong_ci_endpoints_from_the_naive_variance(confidence: float, z: float) -> None:
    """Both interval methods, endpoint by endpoint, from the 1988 variance by hand.

    ``plain``: ``AUC ± z SE``. ``logit``: ``expit(logit(AUC) ± z SE / (AUC (1 - AUC)))``
    (delta method; Qin & Hotilovac 2008). ``z`` is the tabled quantile and SE
    comes from the double-loop structural components, so the only difference is
    float64 rounding (relative 1e-12 is ~1e4 ulps of slack).

    Mutations caught: a wrong quantile (``norm.ppf(confidence)`` gives a 90 %
    interval for 95 %; an 85 % interval moves each end by 0.52 SE, which the
    bootstrap comparison's 0.015 tolerance (~0.55 SE) let through), and a logit
    interval without the delta-method factor or with it inverted.
    """
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, size=70)
    scores = labels * 1.2 + rng.normal(size=70)
    auc, _, _, cov = naive_delong(labels, scores[None, :])
    se = float(np.sqrt(cov[0, 0]))
    auc = float(auc[0])
    assert 0.7 < auc < 0.95 and 0.02 < se < 0.1  # an interior AUROC: no clipping

    plain = delong_ci(labels, scores, confidence=confidence, method="plain")
    assert plain["se"] == pytest.approx(se, rel=1e-12)
    assert plain["low"] == pytest.approx(auc - z * se, rel=1e-12)
    assert plain["high"] == pytest.approx(auc + z * se, rel=1e-12)

    logit = delong_ci(labels, scores, confidence=confidence, method="logit")
    centre, logit_se = np.log(auc / (1 - auc)), se / (auc * (1 - auc))
    assert logit["low"] == pytest.approx(1 / (1 + np.exp(-(centre - z * logit_se))), rel=1e-12)
    assert logit["high"] == pytest.approx(1 / (1 + np.exp(-(centre + z * logit_se))), rel=1e-12)
