"""Where the OOD target ECGs come from: the whole cohort, minus what pretraining saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from cape.errors import CapeError
from cape.protocols import FeatureSpec, HeadSettings, ProtocolSettings, load_feature_sets, run_ood
from cape.protocols.ood import _plan_task
from cape.protocols.targets import target_splits
from cape.protocols.tasks import extract_labels

from .synthetic import make_index, write_dir

LINEAR = HeadSettings("linear", {})


def _features(tmp_path: Path, exclude_splits: object, name: str = "m") -> tuple[list, object]:
    run = tmp_path / f"run-{name}"
    run.mkdir()
    (run / "config.yaml").write_text(
        yaml.safe_dump({"cohorts": None, "exclude_splits": exclude_splits})
    )
    index = make_index({"A": 40, "B": 80, "C": 60}, ecgs_per_patient=3)
    write_dir(tmp_path / name, index, 0.3, {}, seed=0, checkpoint=str(run / "checkpoints"))
    return load_feature_sets([FeatureSpec(name, tmp_path / name)])


def _settings(**overrides: object) -> ProtocolSettings:
    values = {"train_cohort": "A", "runs": 1, "head": LINEAR, "ood_test_n": 45}
    values.update(overrides)
    return ProtocolSettings.for_protocol("ood", **values, subgroups=False, feature_shift=False)


def _targets(sets, index, settings):
    warnings: list[str] = []
    pools = target_splits(settings, sets, ["B", "C"], warnings)
    labels = extract_labels(index, "age", settings.topcoded)
    _, _, chosen = _plan_task(settings, index, labels, "A", ["B", "C"], [], pools)
    return pools, {t.name: t for t in chosen}


def test_whole_cohort_pool_when_only_the_training_cohorts_test_split_was_excluded(tmp_path):
    sets, index = _features(tmp_path, {"A": ["test"]})
    # Pretraining saw every split of B and C: the default pool refuses, naming the fix.
    with pytest.raises(CapeError, match="'all'"):
        run_ood(sets, index, _settings(), progress=False)
    settings = _settings(ood_target_pool="all")
    pools, targets = _targets(sets, index, settings)
    assert pools == {"B": None, "C": None}
    for name, target in targets.items():
        rows = index.iloc[target.positions]
        assert (rows["cohort"] == name).all() and len(rows) == 45
        # Drawn from the whole cohort, not only its test split (45 of 240 / 180 ECGs).
        assert set(rows["split"]) == {"train", "val", "test"}
        # The in-cohort ceiling trains on none of the target ECGs' patients.
        drawn = set(rows["patient_id"])
        for split in ("train", "val"):
            ceiling = index.iloc[target.pools[split]]
            assert (ceiling["cohort"] == name).all()
            assert not drawn & set(ceiling["patient_id"])
    # Deterministic given the seed; another seed draws other ECGs.
    _, again = _targets(sets, index, settings)
    _, other = _targets(sets, index, _settings(ood_target_pool="all", seed=1))
    assert np.array_equal(again["B"].positions, targets["B"].positions)
    assert not np.array_equal(other["B"].positions, targets["B"].positions)
    result = run_ood(sets, index, settings, progress=False)
    assert result.config["target_pools"] == {"B": "whole cohort", "C": "whole cohort"}
    ood = result.predictions[result.predictions["setting"] == "out-of-distribution"]
    expected = set(index.iloc[targets["B"].positions]["record_id"])
    age_b = (ood["cohort"] == "B") & (ood["task"] == "age")
    assert set(ood.loc[age_b, "record_id"]) == expected


def test_unseen_pool_is_what_pretraining_left_out(tmp_path):
    sets, index = _features(tmp_path, ["test"])  # every cohort's test split left out
    pools, targets = _targets(sets, index, _settings())
    assert pools == {"B": ("test",), "C": ("test",)}
    for name, target in targets.items():
        rows = index.iloc[target.positions]
        assert (rows["split"] == "test").all() and (rows["cohort"] == name).all()
    sets, index = _features(tmp_path, {"A": ["test"], "B": ["val", "test"]}, name="m2")
    with pytest.raises(CapeError, match="'C'"):
        _targets(sets, index, _settings())
    warnings: list[str] = []
    assert target_splits(_settings(), sets, ["B"], warnings) == {"B": ("val", "test")}
    assert not warnings


def test_test_pool_and_unknown_pretraining(tmp_path):
    index = make_index({"A": 40, "B": 50}, ecgs_per_patient=2)
    write_dir(tmp_path / "f", index, 0.3, {}, seed=0)  # checkpoint that does not exist
    sets, index = load_feature_sets([FeatureSpec("m", tmp_path / "f")])
    warnings: list[str] = []
    assert target_splits(_settings(), sets, ["B"], warnings) == {"B": ("test",)}
    assert len(warnings) == 1 and "no pretraining config" in warnings[0]
    assert target_splits(_settings(ood_target_pool="test"), sets, ["B"], []) == {"B": ("test",)}
    with pytest.raises(CapeError, match="ood_target_pool"):
        _settings(ood_target_pool="everything")


def test_a_ceiling_that_cannot_be_trained_is_skipped_with_a_message(tmp_path):
    index = make_index({"A": 40, "B": 60}, ecgs_per_patient=2)
    index.loc[(index["cohort"] == "B") & (index["split"] == "val"), "sex"] = "F"
    write_dir(tmp_path / "f", index, 0.3, {}, seed=0)
    sets, index = load_feature_sets([FeatureSpec("m", tmp_path / "f")])
    settings = _settings(ood_target_pool="test", tasks=("sex",))
    labels = extract_labels(index, "sex", settings.topcoded)
    messages: list[str] = []
    _, _, chosen = _plan_task(settings, index, labels, "A", ["B"], messages, {"B": ("test",)})
    assert chosen[0].ceiling_plan is None
    assert any("one class" in m and "'B'" in m for m in messages)
    result = run_ood(sets, index, settings, progress=False)
    assert "in-cohort" not in set(result.results["setting"])
    assert "out-of-distribution" in set(result.results["setting"])
