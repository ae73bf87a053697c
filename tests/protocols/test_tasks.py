"""Label extraction: what counts as labelled, and every exclusion counted per cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cape.errors import CapeError
from cape.protocols import extract_labels, get_task


@pytest.fixture()
def index() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id": list("abcdefg"),
            "cohort": ["ptbxl"] * 4 + ["other"] * 3,
            "age": [90.0, 45.0, np.nan, 61.0, -3.0, 30.0, 200.0],
            "age_topcoded": [True, False, False, False, None, None, None],
            "sex": ["M", "F", None, "M", "U", "F", None],
            "superclasses": [["NORM"], ["MI", "CD"], [], ["STTC"], None, None, None],
        }
    )


def test_age_keeps_topcoded_by_default_and_counts_every_exclusion(index):
    labels = extract_labels(index, "age")
    assert labels.labelled.tolist() == [True, True, False, True, False, True, False]
    assert labels.y[0] == 90.0
    counts = labels.counts.set_index("cohort")
    assert counts.loc["ptbxl", "n_missing"] == 1 and counts.loc["ptbxl", "n_topcoded"] == 1
    assert counts.loc["other", "n_invalid"] == 2  # -3 and 200 years
    assert (counts["n_excluded"] == counts["n_ecgs"] - counts["n_labelled"]).all()
    assert counts["n_labelled"].sum() == labels.labelled.sum()


def test_age_can_exclude_topcoded(index):
    labels = extract_labels(index, "age", topcoded="exclude")
    assert not labels.labelled[0]
    assert labels.counts.set_index("cohort").loc["ptbxl", "n_excluded"] == 2


def test_sex_is_male_positive_and_unknown_values_are_invalid(index):
    labels = extract_labels(index, "sex")
    assert labels.labelled.tolist() == [True, True, False, True, False, True, False]
    assert labels.y[labels.labelled].tolist() == [1, 0, 1, 0]
    counts = labels.counts.set_index("cohort")
    assert counts.loc["other", "n_invalid"] == 1 and counts.loc["other", "n_missing"] == 1


def test_superclasses_become_a_multilabel_matrix_and_empty_lists_are_excluded(index):
    labels = extract_labels(index, "superclass")
    assert labels.label_names == ("CD", "MI", "NORM", "STTC")
    assert labels.labelled.tolist() == [True, True, False, True, False, False, False]
    np.testing.assert_array_equal(labels.y[1], [1, 1, 0, 0])
    counts = labels.counts.set_index("cohort")
    assert counts.loc["ptbxl", "n_empty"] == 1 and counts.loc["other", "n_missing"] == 3
    fixed = extract_labels(index, "superclass", label_names=("NORM", "HYP"))
    np.testing.assert_array_equal(fixed.y[:2], [[1, 0], [0, 0]])


def test_parquet_round_trip_lists_are_read(index, tmp_path):
    index.to_parquet(tmp_path / "i.parquet")
    labels = extract_labels(pd.read_parquet(tmp_path / "i.parquet"), "superclass")
    assert labels.labelled.sum() == 3


def test_unknown_task_and_policy_are_user_errors(index):
    with pytest.raises(CapeError, match="unknown task 'height'"):
        extract_labels(index, "height")
    with pytest.raises(CapeError, match="topcoded"):
        extract_labels(index, "age", topcoded="drop")  # type: ignore[arg-type]


def test_task_scores_use_cape_stats_and_nan_when_undefined():
    from sklearn.metrics import mean_absolute_error, roc_auc_score

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 50), rng.random(50)
    assert get_task("sex").score(y, p) == pytest.approx(roc_auc_score(y, p))
    a, b = rng.normal(50, 10, 50), rng.normal(50, 10, 50)
    assert get_task("age").score(a, b) == pytest.approx(mean_absolute_error(a, b))
    assert np.isnan(get_task("sex").score(np.ones(5), rng.random(5)))
