"""Loading several features directories: alignment, encoder seeds, flags, leak warnings."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from cape.embed import load_features
from cape.errors import CapeError
from cape.protocols import (
    FeatureSpec,
    load_feature_sets,
    pretraining_leak_warnings,
    store_mismatch_warnings,
)

from .synthetic import make_index, write_dir


def test_parse_feature_specs():
    spec = FeatureSpec.parse("idb=runs/f0")
    assert (spec.model, str(spec.path), spec.encoder_seed) == ("idb", "runs/f0", None)
    assert FeatureSpec.parse("idb@3=x").encoder_seed == 3
    for bad in ("idb", "=x", "idb@one=x", "mean-predictor=x"):
        with pytest.raises(CapeError):
            FeatureSpec.parse(bad)


def test_rows_are_aligned_to_the_first_directory(specs):
    sets, index = load_feature_sets(specs)
    features, raw_index = load_features(specs[1].path)  # stored shuffled
    row = {
        (c, r): k
        for k, (c, r) in enumerate(zip(raw_index["cohort"], raw_index["record_id"], strict=True))
    }
    expected = features[
        [row[(c, r)] for c, r in zip(index["cohort"], index["record_id"], strict=True)]
    ]
    np.testing.assert_array_equal(sets[1].features, expected)
    assert [(s.model, s.encoder_seed, s.baseline) for s in sets] == [
        ("good", 0, ""),
        ("good", 1, ""),
        ("bad", 0, ""),
        ("bad", 1, ""),
        ("untrained", 0, "untrained"),
    ]


def test_cohort_selection_and_unknown_cohort(specs):
    sets, index = load_feature_sets(specs[:2], cohorts=["B"])
    assert set(index["cohort"]) == {"B"} and sets[1].features.shape[0] == len(index)
    with pytest.raises(CapeError, match=r"unknown cohorts \['Z'\]"):
        load_feature_sets(specs[:1], cohorts=["Z"])


def test_different_ecgs_between_models_are_an_error(tmp_path, specs):
    index = make_index({"A": 90, "B": 60, "C": 60})
    write_dir(tmp_path / "short", index[index["record_id"] != "B-3-0"], 0.2, {}, seed=0)
    with pytest.raises(CapeError, match=r"cohort 'B': 1 ECGs only in .*good0, 0 only in .*short"):
        load_feature_sets([specs[0], FeatureSpec("other", tmp_path / "short")])
    # Restricted to the cohorts that match, the same directories are fine.
    load_feature_sets([specs[0], FeatureSpec("other", tmp_path / "short")], cohorts=["A", "C"])


def test_duplicate_encoder_seed_and_untrained_flag(specs):
    with pytest.raises(CapeError, match="two feature directories with encoder seed 1"):
        load_feature_sets([FeatureSpec("m", specs[0].path, 1), FeatureSpec("m", specs[1].path, 1)])
    sets, _ = load_feature_sets([FeatureSpec("mystery", specs[4].path)])
    assert sets[0].baseline == "untrained"  # from embed.json


def _run_dir(tmp_path, name, config):
    run = tmp_path / name
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run


def test_leak_warning_when_pretraining_kept_the_test_split(tmp_path):
    index = make_index({"A": 20, "B": 20})
    leaky = _run_dir(tmp_path, "leaky", {"cohorts": None, "exclude_splits": []})
    clean = _run_dir(tmp_path, "clean", {"cohorts": None, "exclude_splits": ["test"]})
    other = _run_dir(tmp_path, "other", {"cohorts": ["B"], "exclude_splits": []})
    for name, run in (("leaky", leaky), ("clean", clean), ("other", other)):
        write_dir(
            tmp_path / f"f-{name}",
            index,
            1.0,
            {},
            seed=0,
            checkpoint=str(run / "encoder.safetensors"),
        )
    sets, _ = load_feature_sets(
        [FeatureSpec(n, tmp_path / f"f-{n}") for n in ("leaky", "clean", "other")]
    )
    warnings = pretraining_leak_warnings(sets, "A")
    assert len(warnings) == 1 and "leaky@0" in warnings[0] and "cohort 'A'" in warnings[0]
    assert len(pretraining_leak_warnings(sets, "B")) == 2


def test_store_mismatch_is_a_warning(tmp_path, specs):
    sets, _ = load_feature_sets(specs[:2])
    assert store_mismatch_warnings(sets) == []
    sets[1].info["store_fingerprint"] = "another store"
    (warning,) = store_mismatch_warnings(sets)
    assert "2 different stores" in warning and str(specs[0].path) in warning
