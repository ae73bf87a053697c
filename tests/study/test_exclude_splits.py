"""Per-cohort exclusion from pretraining: only the heads' training cohort loses its test split."""

from __future__ import annotations

import pandas as pd
import pytest

from cape.errors import CapeError
from cape.pretrain.config import load_config
from cape.protocols.featuresets import pretraining_splits
from cape.samplers import PatientTable, excluded_splits


def _manifest() -> pd.DataFrame:
    rows = []
    for cohort in ("a", "b"):
        for p in range(12):
            split = ("train", "val", "test")[p % 3]
            for k in range(2):
                rows.append(
                    {
                        "record_id": f"{cohort}{p}-{k}",
                        "patient_id": f"P{p}",
                        "cohort": cohort,
                        "split": split,
                    }
                )
    return pd.DataFrame(rows)


def _splits_used(table: PatientTable, manifest: pd.DataFrame) -> dict[str, set[str]]:
    used = manifest.loc[table.records]
    return {c: set(g["split"]) for c, g in used.groupby("cohort")}


def test_mapping_excludes_only_the_named_cohorts_splits() -> None:
    manifest = _manifest()
    table = PatientTable.from_manifest(manifest, exclude_splits={"a": ["test"]})
    assert _splits_used(table, manifest) == {
        "a": {"train", "val"},
        "b": {"train", "val", "test"},
    }
    # A list still applies to every cohort (backward compatible).
    listed = PatientTable.from_manifest(manifest, exclude_splits=["test"])
    assert _splits_used(listed, manifest) == {"a": {"train", "val"}, "b": {"train", "val"}}
    assert table.n_patients == 8 + 12 and listed.n_patients == 16
    with pytest.raises(CapeError, match="not in the store"):
        PatientTable.from_manifest(manifest, exclude_splits={"zz": ["test"]})


def test_unsplit_ecgs_only_matter_in_cohorts_that_exclude_splits() -> None:
    manifest = _manifest()
    manifest.loc[manifest["cohort"] == "b", "split"] = None
    table = PatientTable.from_manifest(manifest, exclude_splits={"a": ["test"]})
    assert table.patients_per_cohort() == {"a": 8, "b": 12}
    with pytest.raises(CapeError, match="no split"):
        PatientTable.from_manifest(manifest, exclude_splits={"b": ["test"]})


def test_config_accepts_a_list_or_a_mapping() -> None:
    assert load_config(None).exclude_splits == ["test"]
    config = load_config(None, ["exclude_splits={harbor: [test]}"])
    assert config.exclude_splits == {"harbor": ["test"]}
    assert excluded_splits(config.exclude_splits, "harbor") == ["test"]
    assert excluded_splits(config.exclude_splits, "serra") == []
    assert excluded_splits(["test", "val"], "serra") == ["test", "val"]
    with pytest.raises(CapeError, match="exclude_splits"):
        load_config(None, ["exclude_splits={harbor: [holdout]}"])


@pytest.mark.parametrize(
    ("config", "cohort", "expected"),
    [
        ({"cohorts": None, "exclude_splits": {"a": ["test"]}}, "a", {"train", "val"}),
        ({"cohorts": None, "exclude_splits": {"a": ["test"]}}, "b", {"train", "val", "test"}),
        ({"cohorts": None, "exclude_splits": ["test"]}, "b", {"train", "val"}),
        ({"cohorts": ["a"], "exclude_splits": []}, "b", set()),
        ({"cohorts": None}, "b", {"train", "val"}),  # the default: [test]
    ],
)
def test_splits_an_encoder_was_pretrained_on(tmp_path, config, cohort, expected) -> None:
    import yaml

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    info = {"checkpoint": str(tmp_path / "checkpoints" / "last.pt")}
    (tmp_path / "checkpoints").mkdir()
    assert pretraining_splits(info, cohort) == expected
    assert pretraining_splits({"checkpoint": "/nowhere/last.pt"}, cohort) is None


def test_study_refuses_a_mapping_that_keeps_the_heads_training_cohorts_test_split() -> None:
    from cape.study.loading import load_study

    study = load_study("demo-quick")
    assert study.pretrain.settings["exclude_splits"] == {"harbor": ["test"]}
    assert study.evaluate.ood is not None and study.evaluate.ood.target_pool == "all"
    with pytest.raises(CapeError, match="keeps the test split of 'harbor'"):
        load_study("demo-quick", ["pretrain.settings.exclude_splits={serra: [test]}"])
    listed = load_study("demo-quick", ["pretrain.settings.exclude_splits=[test]"])
    assert listed.pretrain.settings["exclude_splits"] == ["test"]


def test_study_head_settings_reach_the_protocol() -> None:
    from cape.study.evaluation import _head
    from cape.study.loading import load_study

    study = load_study(
        "demo-quick",
        [
            "evaluate.ood.head={hidden_grid: [32, 64], std_floor: 0.1, age_target: age-sigmoid}",
        ],
    )
    assert study.evaluate.ood is not None
    head = _head(study.evaluate.ood)
    assert head.hidden_grid == (32, 64) and head.grid_layers == 2
    assert head.std_floor == 0.1 and head.age_target == "age-sigmoid"
    head.validate()
