"""Specs, presets and the artefact-strength interpolation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cape.errors import CapeError
from cape.simulator.cohorts import REFERENCE_DEVICE, CohortSpec, DeviceSpec, dump_spec, load_spec
from cape.simulator.devices import effective_device
from cape.simulator.presets import DEMO_AGE_EFFECT_SCALE, demo, preset, tiny


def test_demo_has_the_five_roles_and_formats() -> None:
    spec = demo()
    formats = {c.name: c.output_format for c in spec.cohorts}
    assert formats == {
        "harbor": "wfdb",
        "serra": "code15",
        "jade": "wfdb",
        "meadow": "wfdb",
        "linden": "ptbxl",
    }
    serra = spec.cohort("serra")
    assert {d.record_seconds for d in serra.devices} == {7, 10}
    assert spec.cohort("harbor").demographics.ethnicity
    assert spec.cohort("jade").mains_hz == 50
    meadow_age = spec.cohort("meadow").demographics.age
    assert 60 <= meadow_age.mean <= 68 and meadow_age.max - meadow_age.min < 45
    assert spec.age_effect_scale == DEMO_AGE_EFFECT_SCALE


def test_tiny_is_small_and_keeps_every_format() -> None:
    spec = tiny()
    assert all(c.n_patients <= 20 for c in spec.cohorts)
    assert {c.output_format for c in spec.cohorts} == {"wfdb", "code15", "ptbxl"}


def test_spec_round_trips_through_yaml(tmp_path: Path) -> None:
    spec = demo().model_copy(update={"seed": 7, "scale": 0.5})
    dump_spec(spec, tmp_path / "spec.yaml")
    assert load_spec(tmp_path / "spec.yaml") == spec


def test_bad_spec_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("cohorts: []\nseed: -1\n")
    with pytest.raises(CapeError, match=r"bad\.yaml"):
        load_spec(path)
    with pytest.raises(CapeError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def test_unknown_condition_and_impossible_device_are_rejected() -> None:
    base = demo().cohort("harbor").model_dump()
    with pytest.raises(ValidationError, match="unknown conditions"):
        CohortSpec.model_validate({**base, "conditions": {"XYZ": 0.1}})
    with pytest.raises(ValidationError, match="Nyquist"):
        DeviceSpec(name="d", sampling_rate_hz=250, lowpass_hz=150)
    with pytest.raises(CapeError, match="unknown simulator preset"):
        preset("huge")


def test_artefact_strength_zero_gives_the_reference_device_and_one_the_device() -> None:
    device = demo().cohort("serra").devices[0]
    at_zero = effective_device(device, 0.0)
    at_one = effective_device(device, 1.0)
    fields = set(DeviceSpec.model_fields) - {"name", "share"}
    for field in fields:
        assert getattr(at_zero, field) == pytest.approx(getattr(REFERENCE_DEVICE, field)), field
        assert getattr(at_one, field) == pytest.approx(getattr(device, field)), field
    stronger = effective_device(device, 2.0)
    # Geometric extrapolation: twice as far from the reference on a log scale.
    assert stronger.noise_uv == pytest.approx(
        REFERENCE_DEVICE.noise_uv * (device.noise_uv / REFERENCE_DEVICE.noise_uv) ** 2
    )
    assert stronger.hum_uv == pytest.approx(2 * device.hum_uv)
    with pytest.raises(ValueError, match="strength"):
        effective_device(device, -0.1)
