"""Config loading, overrides, presets, and the learning-rate schedule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from cape.errors import CapeError
from cape.pretrain.config import load_config, save_config
from cape.pretrain.optim import learning_rates


def test_presets_load_and_define_their_encoders() -> None:
    paper = load_config("paper")
    assert paper.model.preset == "paper" and paper.lr == 0.1 and paper.batch_patients == 512
    assert paper.encoder_spec().block_channels == (128, 196, 256, 320)
    small = load_config("small")
    assert small.encoder_spec().pooling == "avg" and small.threads == 1


def test_overrides_are_typed_and_nested(tmp_path: Path) -> None:
    config = load_config(
        "small",
        [
            "model.norm=group",
            "cohorts=[a, b]",
            "lr=0.01",
            "masking.per_lead=true",
            f"store={tmp_path}",
        ],
    )
    assert config.model.norm == "group" and config.encoder_spec().norm == "group"
    assert config.cohorts == ["a", "b"] and config.lr == 0.01
    assert config.masking.per_lead is True and config.store == tmp_path
    assert config.model.preset == "small"  # a nested override keeps the file's other keys


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epochs=abc", "epochs"),
        ("epochs=2.5", "epochs"),
        ("batching=mixed", "batching"),
        ("model.dropout=1.5", "model.dropout"),
        ("lr=-1", "lr"),
        ("nonsense=1", "unknown setting 'nonsense'"),
        ("model.width=3", "unknown setting 'model.width'"),
        ("epochs", "expected key=value"),
    ],
)
def test_bad_overrides_name_the_setting(override: str, message: str) -> None:
    with pytest.raises(CapeError, match=message):
        load_config("small", [override])


def test_config_file_round_trip_and_errors(tmp_path: Path) -> None:
    config = load_config("small", ["epochs=3", "model.dropout=0.1"])
    path = tmp_path / "config.yaml"
    save_config(config, path)
    assert load_config(path) == config
    (tmp_path / "bad.yaml").write_text("epochs: [1\n")
    with pytest.raises(CapeError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({"epochz": 3}))
    with pytest.raises(CapeError, match="epochz"):
        load_config(tmp_path / "typo.yaml")
    with pytest.raises(CapeError, match="neither a file nor a preset"):
        load_config(tmp_path / "missing.yaml")


def test_differences_ignore_runtime_settings() -> None:
    base = load_config("small")
    runtime = load_config("small", ["num_workers=7", "device=cpu", "log_every_steps=3"])
    assert base.differences(runtime) == []
    changed = load_config("small", ["model.norm=group", "lr=0.5"])
    assert base.differences(changed) == ["lr", "model.norm"]


def test_masking_bounds_are_checked() -> None:
    config = load_config("small", ["masking.min_seconds=0.6", "masking.max_seconds=0.5"])
    with pytest.raises(CapeError, match="min_seconds"):
        config.augmenter()
    augmenter = load_config("small").augmenter()
    assert augmenter.crop_samples == 2800 and augmenter.mask_max_samples == 200


def test_cosine_schedule_matches_formula() -> None:
    rates = learning_rates(11, base_lr=0.1, schedule="cosine", min_lr=0.001)
    expected = [0.001 + 0.5 * 0.099 * (1 + math.cos(math.pi * t / 10)) for t in range(11)]
    np.testing.assert_allclose(rates, expected)
    assert rates[0] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.001)


def test_warmup_then_cosine_and_constant() -> None:
    rates = learning_rates(10, base_lr=1.0, warmup_steps=4)
    np.testing.assert_allclose(rates[:4], [0.25, 0.5, 0.75, 1.0])
    assert rates[4] == pytest.approx(1.0) and rates[-1] == pytest.approx(0.0)
    assert (np.diff(rates[4:]) <= 0).all()
    np.testing.assert_allclose(learning_rates(5, 0.3, schedule="constant"), [0.3] * 5)
    with pytest.raises(ValueError, match="schedule"):
        learning_rates(5, 0.3, schedule="step")
