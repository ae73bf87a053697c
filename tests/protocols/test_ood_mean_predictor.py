"""The OOD protocol's mean-predictor baseline sees the training sample's labels only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cape.protocols import (
    MEAN_PREDICTOR,
    FeatureSpec,
    HeadSettings,
    ProtocolSettings,
    load_feature_sets,
    run_ood,
)

from .synthetic import make_index, write_dir

# Every ECG of a cohort's split has one age; the training-split ages differ by cohort.
AGES = {
    "A": {"train": 30.0, "val": 60.0, "test": 90.0},
    "B": {"train": 40.0, "val": 65.0, "test": 95.0},
    "C": {"train": 50.0, "val": 70.0, "test": 85.0},
}


def test_mean_predictor_is_the_training_cohorts_training_mean(tmp_path: Path) -> None:
    """A fixture whose answer is known: every ECG of a cohort's split has one age
    (A: train 30, val 60, test 90; B: 40, 65, 95; C: 50, 70, 85). Whatever rows the
    protocol samples from a training split, their mean is exactly that split's
    age. So the mean predictor must say 30.0 wherever the head was trained on A
    (A's test split, targets B and C) and 40.0 / 50.0 for the in-cohort ceilings
    of B / C (trained on their own training split), in every run.

    Mutations caught: the baseline fitted on train + val labels (a mean between
    the train and val ages), on the whole training cohort, on the scored ECGs'
    own labels (``y[positions]``: the test ages), or on the target cohort's
    labels in the out-of-distribution setting.
    """
    index = make_index({"A": 40, "B": 30, "C": 30}, ecgs_per_patient=2)
    for cohort, ages in AGES.items():
        rows = index["cohort"] == cohort
        index.loc[rows, "age"] = index.loc[rows, "split"].map(ages)
    write_dir(tmp_path / "m", index, 0.3, {}, seed=0)
    sets, loaded = load_feature_sets([FeatureSpec("m", tmp_path / "m")])
    settings = ProtocolSettings.for_protocol(
        "ood",
        train_cohort="A",
        runs=2,
        head=HeadSettings("linear", {}),
        ood_test_n=20,
        subgroups=False,
        feature_shift=False,
    )
    result = run_ood(sets, loaded, settings, progress=False)
    predictions = result.predictions
    baseline = predictions[
        (predictions["model"] == MEAN_PREDICTOR) & (predictions["task"] == "age")
    ]
    assert set(baseline["cohort"]) == {"A", "B", "C"} and baseline["run"].nunique() == 2
    trained_on = np.where(baseline["setting"] == "in-cohort", baseline["cohort"], "A")
    expected = [AGES[cohort]["train"] for cohort in trained_on]
    np.testing.assert_array_equal(baseline["y_pred"].to_numpy(dtype=np.float64), expected)
    assert set(baseline["setting"]) == {"source", "out-of-distribution", "in-cohort"}
    # The scored ECGs are test-split ECGs (aged 90, 95, 85): the baseline is blind to them.
    for cohort in AGES:
        scored = baseline.loc[baseline["cohort"] == cohort, "y_true"]
        assert (scored == AGES[cohort]["test"]).all()
