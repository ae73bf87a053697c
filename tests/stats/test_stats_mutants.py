"""Tests that kill mutmut's surviving mutants of cape.stats (docs/testing.md).

Mutant names are mutmut 3.8.1's (``scripts/mutation.sh stats``), written without the
``cape.stats.<module>.x_`` prefix; each docstring names the mutants the test kills. Most are
result dictionaries whose keys, notes or labels a mutant renames (a renamed key breaks every
report that reads it) and error messages a mutant drops. This file lives in tests/stats, not
tests/mutation, so that it falls inside the stats module's test selection.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cape.stats import delong, hypothesis, intervals, metrics, ranks

Y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
A = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.5, 0.3])
B = np.array([0.3, 0.2, 0.6, 0.7, 0.4, 0.5, 0.1, 0.8])


def test_delong_test_result_is_exact() -> None:
    """Kills delong_test__mutmut_28/29 (note not ""), _60 (p = 3 sf), _63.._78 (keys or the
    test name renamed, auc_a taken from classifier b)."""
    result = delong.delong_test(Y, A, B)
    assert set(result) == {
        "test", "auc_a", "auc_b", "difference", "se", "z", "p_value", "n_positive",
        "n_negative", "note",
    }  # fmt: skip
    assert result["test"] == "delong"
    assert result["auc_a"] == metrics.auroc(Y, A)
    assert result["auc_b"] == metrics.auroc(Y, B)
    assert result["note"] == ""
    assert result["p_value"] == pytest.approx(
        2.0 * scipy_stats.norm.sf(abs(result["z"])), rel=1e-12
    )
    assert result["se"] > 0


def test_delong_test_degenerate_equal_aucs() -> None:
    """Kills delong_test__mutmut_30 (``<=`` -> ``<``: a zero variance divides by zero),
    _31/_32 (se None / 1.0), _33/_35/_36 (z wrong), _50/_51 (note altered)."""
    y = np.array([0, 0, 1, 1])
    perfect = np.array([0.1, 0.2, 0.8, 0.9])
    result = delong.delong_test(y, perfect, perfect * 2)
    assert (result["se"], result["z"], result["p_value"]) == (0.0, 0.0, 1.0)
    assert result["note"] == "variance of the difference is zero; test is degenerate"


def test_delong_ci_confidence_bounds_and_result() -> None:
    """Kills delong_ci__mutmut_12/13/14/15 (confidence 0 or 1 accepted, message dropped),
    _45/_46 (note not ""), _103.._113 (keys renamed, n_negative counting positives)."""
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match=rf"^confidence must be in \(0, 1\), got {bad}$"):
            delong.delong_ci(Y, A, confidence=bad)
    y = np.array([0, 0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.5, 0.3, 0.4, 0.9, 0.2, 0.6])
    result = delong.delong_ci(y, s)
    assert set(result) == {
        "auc", "se", "low", "high", "confidence", "method", "n_positive", "n_negative", "note",
    }  # fmt: skip
    assert (result["confidence"], result["method"], result["note"]) == (0.95, "logit", "")
    assert (result["n_positive"], result["n_negative"]) == (3, 4)


def test_delong_ci_degenerate_note() -> None:
    """Kills delong_ci__mutmut_54/55/56 (the collapse note altered)."""
    result = delong.delong_ci(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert result["note"] == "DeLong variance is zero; interval collapses to the point estimate"
    assert result["low"] == result["high"] == 1.0


def test_delong_placements_shape_and_value_errors() -> None:
    """Kills delong_placements__mutmut_9/10 (``or`` -> ``and``: mismatched scores or 2-D
    labels let through), _17/_18 (message dropped / shape of None) and _22.._25 (NaN message
    altered)."""
    with pytest.raises(ValueError, match=r"^labels \(4,\) and scores \(2, 5\) do not match$"):
        delong.delong_placements(np.array([0, 1, 0, 1]), np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"^labels \(1, 4\) and scores \(4,\) do not match$"):
        delong.delong_placements(np.array([[0, 1, 0, 1]]), np.zeros(4))
    with pytest.raises(ValueError) as info:
        delong.delong_placements(np.array([0, 1, 0, 1]), np.array([0.1, np.nan, 0.2, 0.3]))
    assert str(info.value) == "scores contain NaN/inf; exclude those samples before DeLong's test"


def test_bootstrap_indices_bounds_dtype_and_range() -> None:
    """Kills bootstrap_indices__mutmut_2..6 (n = 1 or one resample refused, message dropped),
    _10/_21 (int64 instead of the documented int32) and _22 (index 0 never drawn)."""
    assert intervals.bootstrap_indices(1, 1, 0).tolist() == [[0]]
    with pytest.raises(
        ValueError, match=r"^need n >= 1 and n_resamples >= 1, got n=0, n_resamples=3$"
    ):
        intervals.bootstrap_indices(0, 3, 0)
    idx = intervals.bootstrap_indices(5, 200, 1)
    assert idx.dtype == np.int32
    assert set(np.unique(idx).tolist()) == {0, 1, 2, 3, 4}


def test_bootstrap_checks_and_messages() -> None:
    """Kills _check_indices__mutmut_3/11 (1-D indices accepted, message dropped),
    _check_confidence__mutmut_3/4/5 (confidence 0 or 1 accepted), bootstrap_ci__mutmut_9/10/11
    and bootstrap_difference_ci__mutmut_14..17 (sample-count messages dropped or quoting
    shape[1])."""
    y, p = np.zeros((4, 3)), np.zeros((5, 2))
    with pytest.raises(
        ValueError, match=r"^indices must be a 2-D integer array, got int64 \(3,\)$"
    ):
        intervals.bootstrap_ci(metrics.accuracy, np.zeros(4), np.zeros(4), np.array([0, 1, 2]))
    idx = intervals.bootstrap_indices(4, 3, 0)
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match=rf"^confidence must be in \(0, 1\), got {bad}$"):
            intervals.bootstrap_ci(metrics.accuracy, np.zeros(4), np.zeros(4), idx, bad)
    with pytest.raises(ValueError, match=r"^y_true has 4 samples, y_pred 5$"):
        intervals.bootstrap_ci(metrics.accuracy, y, p, idx)
    with pytest.raises(ValueError, match=r"^sample counts differ: y_true 4, a 4, b 5$"):
        intervals.bootstrap_difference_ci(metrics.accuracy, y, np.zeros((4, 2)), p, idx)


def test_percentile_ci_result_skips_and_log(caplog: pytest.LogCaptureFixture) -> None:
    """Kills _percentile_ci__mutmut_3 (message dropped), _18.._23 (log line altered),
    _33.._38 (keys or method renamed) and bootstrap_difference_ci__mutmut_46 (n_skipped None)."""
    y = np.array([0, 1, 0, 1])
    s = np.array([0.1, 0.9, 0.2, 0.8])
    idx = np.array([[0, 1, 2, 3], [0, 0, 2, 2], [1, 3, 0, 2], [0, 2, 0, 2]])
    with caplog.at_level(logging.INFO, logger="cape.stats.intervals"):
        result = intervals.bootstrap_difference_ci(metrics.auroc, y, s, 1 - s, idx)
    assert "bootstrap: skipped 2 resamples where the metric was undefined" in caplog.messages
    assert result["n_skipped"] == 2 and result["n_resamples"] == 2
    assert set(result) == {
        "estimate", "low", "high", "confidence", "method", "n_resamples", "n_skipped",
    }  # fmt: skip
    assert (result["method"], result["confidence"]) == ("percentile", 0.95)
    with pytest.raises(metrics.UndefinedMetricError) as info:
        intervals.bootstrap_ci(metrics.auroc, y, s, np.array([[0, 0, 2, 2]]))
    assert str(info.value) == "the metric was undefined on all 1 resamples"


def test_mean_se_ci_results_and_errors() -> None:
    """Kills mean_se_ci__mutmut_8/13 (2-D values accepted, message dropped), _18 (NaN message
    altered), _34.._55 (one-run keys, n, df, note) and _85.._95 (keys and note)."""
    with pytest.raises(
        ValueError, match=r"^values must be a non-empty 1-D array, got shape \(1, 2\)$"
    ):
        intervals.mean_se_ci(np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError) as info:
        intervals.mean_se_ci(np.array([1.0, np.nan]))
    assert (
        str(info.value) == "values contain NaN/inf; drop failed runs explicitly before summarising"
    )
    keys = {"mean", "se", "low", "high", "confidence", "n", "df", "note"}
    one = intervals.mean_se_ci(np.array([3.0]))
    assert set(one) == keys
    assert (one["mean"], one["confidence"], one["n"], one["df"]) == (3.0, 0.95, 1, 0)
    assert one["note"] == "one run: no standard error"
    assert math.isnan(one["se"]) and math.isnan(one["low"]) and math.isnan(one["high"])
    many = intervals.mean_se_ci(np.array([1.0, 2.0, 4.0]))
    assert set(many) == keys
    assert (many["n"], many["df"], many["note"], many["confidence"]) == (3, 2, "", 0.95)


def test_metric_input_messages() -> None:
    """Kills _as_finite_1d__mutmut_8/12/15 (messages dropped or counting the finite values),
    _check_pair__mutmut_2..14 (the argument named wrongly), r2_score__mutmut_14..17,
    macro_auroc__mutmut_8..11, per_label_auroc__mutmut_5/9, accuracy__mutmut_5/9/12/13/14."""
    with pytest.raises(ValueError, match=r"^y_true must be 1-D, got shape \(1, 2\)$"):
        metrics.mean_absolute_error(np.zeros((1, 2)), np.zeros(2))
    with pytest.raises(
        ValueError, match=r"^y_pred contains 1 NaN/inf values; exclude them before scoring$"
    ):
        metrics.mean_absolute_error(np.zeros(3), np.array([0.0, np.inf, 1.0]))
    with pytest.raises(metrics.UndefinedMetricError) as info:
        metrics.r2_score(np.ones(3), np.zeros(3))
    assert str(info.value) == "R² is undefined when y_true is constant"
    with pytest.raises(metrics.UndefinedMetricError) as info:
        metrics.macro_auroc(np.ones((3, 2)), np.zeros((3, 2)))
    assert str(info.value) == "macro AUROC is undefined: every label has a single class"
    with pytest.raises(
        ValueError,
        match=r"^y_true and y_score must be 2-D of the same shape, got \(3,\) and \(3,\)$",
    ):
        metrics.per_label_auroc(np.zeros(3), np.zeros(3))
    with pytest.raises(
        ValueError, match=r"^y_true \(1, 2\) and y_pred \(1, 2\) must be equal 1-D shapes$"
    ):
        metrics.accuracy(np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError) as info:
        metrics.accuracy(np.zeros(0), np.zeros(0))
    assert str(info.value) == "cannot score an empty set of samples"


def test_mae_of_boolean_arrays() -> None:
    """Kills _as_finite_1d__mutmut_3/5 (no float64 conversion: subtracting boolean arrays
    raises in NumPy)."""
    assert metrics.mean_absolute_error(np.array([True, False]), np.array([False, False])) == 0.5


def test_macro_auroc_report_names_and_undefined() -> None:
    """Kills macro_auroc_report__mutmut_7/9/10 (default names not "0", "1", ...), _14 (message
    dropped), _24/_25 (NaN spelled so float() raises) and _27/_28 (per_label key renamed)."""
    y = np.array([[0, 1], [1, 1], [0, 1], [1, 1]])
    s = np.array([[0.1, 0.2], [0.9, 0.3], [0.2, 0.4], [0.8, 0.5]])
    report = metrics.macro_auroc_report(y, s)
    assert report["per_label"]["0"] == 1.0 and math.isnan(report["per_label"]["1"])
    assert report["skipped"] == ["1"]
    with pytest.raises(ValueError, match=r"^1 label names for 2 label columns$"):
        metrics.macro_auroc_report(y, s, ["a"])
    assert math.isnan(metrics.macro_auroc_report(np.ones((3, 1)), np.zeros((3, 1)))["macro_auroc"])


def test_kruskal_wallis_results() -> None:
    """Kills kruskal_wallis__mutmut_11 (group name missing from the message), _18/_19 (note
    not ""), _27/_28 (identical-values note altered), _33.._36 and _45/_46 (keys and test name)."""
    with pytest.raises(
        ValueError,
        match=r"^group 'b' contains NaN/inf; drop failed runs explicitly before testing$",
    ):
        hypothesis.kruskal_wallis({"a": np.array([1.0]), "b": np.array([np.nan])})
    keys = {
        "test",
        "statistic",
        "p_value",
        "df",
        "n_groups",
        "group_sizes",
        "group_medians",
        "note",
    }
    result = hypothesis.kruskal_wallis([np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    assert set(result) == keys
    assert (result["test"], result["note"], result["n_groups"]) == ("kruskal_wallis", "", 2)
    same = hypothesis.kruskal_wallis([np.array([1.0, 1.0]), np.array([1.0])])
    assert same["note"] == "all values are identical; no evidence of a difference"


def test_wilcoxon_results_and_notes() -> None:
    """Kills wilcoxon_signed_rank__mutmut_2/4 (defaults upper-cased), _6.._20 (argument named
    wrongly in messages), _28/_29 (note not ""), _31/_33 (all-zero case), _44 (zero_method
    dropped), _48/_49 (note at 6 differences), _51.._54 (the p floor in the note) and
    _55.._75 (keys and test name)."""
    with pytest.raises(ValueError, match=r"^x contains NaN/inf"):
        hypothesis.wilcoxon_signed_rank(np.array([np.nan]))
    with pytest.raises(ValueError, match=r"^y must be a non-empty 1-D array"):
        hypothesis.wilcoxon_signed_rank(np.array([1.0]), np.array([]))
    six = hypothesis.wilcoxon_signed_rank(np.array([1.0, -2.0, 3.0, 4.0, 5.0, 6.0]))
    assert set(six) == {
        "test", "statistic", "p_value", "n", "n_nonzero", "median_difference", "alternative",
        "zero_method", "note",
    }  # fmt: skip
    assert (six["test"], six["note"]) == ("wilcoxon_signed_rank", "")
    assert (six["alternative"], six["zero_method"]) == ("two-sided", "wilcox")
    three = hypothesis.wilcoxon_signed_rank(np.array([1.0, 2.0, 3.0]))
    assert three["note"] == "only 3 non-zero differences: p >= 0.25 whatever the data"
    one = hypothesis.wilcoxon_signed_rank(np.array([0.0, 0.0, 2.0]))
    assert one["note"] == "only 1 non-zero differences: p >= 1 whatever the data"
    zero = hypothesis.wilcoxon_signed_rank(np.zeros(3))
    assert (zero["statistic"], zero["p_value"]) == (0.0, 1.0)
    assert zero["note"] == "all differences are zero; no evidence of a difference"
    d = np.array([0.0, 0.0, 0.0, 1.0, 2.0, -3.0, 4.0, 5.0, -6.0, 7.0, 8.0])
    pratt = hypothesis.wilcoxon_signed_rank(d, zero_method="pratt")
    expected = scipy_stats.wilcoxon(d, zero_method="pratt")
    assert pratt["p_value"] == float(expected.pvalue)
    assert pratt["p_value"] != float(scipy_stats.wilcoxon(d).pvalue)


def test_midrank_rows_of_no_rows() -> None:
    """Kills midrank_rows__mutmut_5/8 (``np.stack`` of an empty list raises)."""
    out = ranks.midrank_rows(np.zeros((0, 3)))
    assert out.shape == (0, 3) and out.dtype == np.float64


def test_delong_test_degenerate_different_aucs() -> None:
    """Kills delong_test__mutmut_34 and _39/_40/_41 (z of a zero-variance difference not
    +inf), _44/_48 (p 1 instead of 0): a perfect classifier against its mirror image has zero
    DeLong variance and AUROCs 1 and 0."""
    y = np.array([0, 0, 1, 1])
    perfect = np.array([0.1, 0.2, 0.8, 0.9])
    result = delong.delong_test(y, perfect, -perfect)
    assert (result["difference"], result["se"], result["z"], result["p_value"]) == (
        1.0, 0.0, math.inf, 0.0,
    )  # fmt: skip
    assert result["note"] == "variance of the difference is zero; test is degenerate"


def test_delong_ci_of_tied_scores_collapses() -> None:
    """Kills delong_ci__mutmut_47 (``or`` -> ``and``): all-tied scores give AUROC 0.5 with zero
    variance, which is degenerate although 0.5 is not 0 or 1."""
    result = delong.delong_ci(np.array([0, 0, 1, 1]), np.full(4, 0.5))
    assert (result["auc"], result["low"], result["high"], result["se"]) == (0.5, 0.5, 0.5, 0.0)
    assert result["note"] == "DeLong variance is zero; interval collapses to the point estimate"


def test_empty_and_single_sample_scoring() -> None:
    """Kills _check_pair__mutmut_18 (``size == 0`` -> ``== 1``: a one-sample MAE refused and an
    empty one scored as NaN) and _19/_20/_21 (message dropped or altered)."""
    assert metrics.mean_absolute_error(np.array([2.0]), np.array([3.5])) == 1.5
    with pytest.raises(ValueError) as info:
        metrics.mean_absolute_error(np.zeros(0), np.zeros(0))
    assert str(info.value) == "cannot score an empty set of samples"


def test_binary_label_message_lists_five_unknown_labels() -> None:
    """Kills as_binary_labels__mutmut_13 (the message's list of unknown labels not cut at 5)."""
    with pytest.raises(ValueError) as info:
        metrics.as_binary_labels(np.array([2, 3, 4, 5, 6, 7, 0]))
    assert str(info.value) == "binary labels must be 0/1 or bool, found [2, 3, 4, 5, 6]"


def test_midrank_of_zero_and_one_values() -> None:
    """Kills midrank__mutmut_14 (``n == 0`` -> ``== 1``: an empty array indexes element 0 and a
    single value is returned uninitialised)."""
    assert ranks.midrank(np.array([])).shape == (0,)
    assert ranks.midrank(np.array([7.0])).tolist() == [1.0]
