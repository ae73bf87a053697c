"""Typed specification of synthetic cohorts, their devices and the global knobs.

A :class:`SimulationSpec` is what ``cape simulate`` runs: a list of
:class:`CohortSpec` (who the patients are, how often they are recorded, on
which :class:`DeviceSpec`, written in which format) plus the seed, the size
multiplier and the three effect knobs (age, sex, device artefacts). Specs are
pydantic models so that a YAML file is checked field by field; the resolved
spec is saved next to the output and reads back into the same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cape.errors import CapeError
from cape.simulator.conditions import CONDITIONS


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceSpec(_Spec):
    """One recording device (cart model) and the artefacts it leaves.

    Every field has a "neutral" value in :data:`REFERENCE_DEVICE`; the
    artefact-strength knob moves each device between that reference
    (strength 0: all devices identical) and its own values (strength 1), and
    beyond (strength > 1). See docs/simulator.md for the literature basis.
    """

    name: str = Field(min_length=1, description="device / cart model name written to the metadata")
    share: float = Field(default=1.0, gt=0, description="relative share of the cohort's ECGs")
    sampling_rate_hz: Literal[250, 500, 1000] = 500
    record_seconds: Literal[7, 10] = 10
    highpass_hz: float = Field(default=0.05, gt=0, le=2.0, description="device high-pass corner")
    lowpass_hz: float = Field(default=150.0, ge=20, description="device low-pass corner")
    filter_phase: Literal["zero", "causal"] = Field(
        default="zero",
        description="'zero': linear/zero-phase digital filter; 'causal': analogue-style IIR",
    )
    hum_uv: float = Field(
        default=0.0,
        ge=0,
        description="residual mains hum amplitude (µV) after the device's own notch",
    )
    noise_uv: float = Field(
        default=10.0, ge=0, description="RMS of amplifier + electrode noise (µV)"
    )
    noise_colour: float = Field(
        default=1.0,
        ge=0,
        le=2,
        description="noise spectrum ~ 1/f^colour (0 white, 1 pink, 2 brown)",
    )
    wander_mv: float = Field(
        default=0.05, ge=0, description="baseline wander amplitude (mV) before the high-pass"
    )
    adc_lsb_uv: float = Field(default=1.0, gt=0, le=50, description="ADC resolution: µV per bit")
    gain_error: float = Field(
        default=0.0, ge=-0.5, le=0.5, description="calibration error of the gain (0.02 = +2 %)"
    )
    gain_jitter: float = Field(
        default=0.005, ge=0, le=0.2, description="per-recording SD of the gain (fraction)"
    )

    @model_validator(mode="after")
    def _lowpass_below_nyquist(self) -> DeviceSpec:
        nyquist = self.sampling_rate_hz / 2
        if self.lowpass_hz >= 0.9 * nyquist:
            raise ValueError(
                f"device {self.name!r}: lowpass_hz={self.lowpass_hz} must be below 0.9 x Nyquist "
                f"({0.9 * nyquist:g} Hz at {self.sampling_rate_hz} Hz)"
            )
        if self.highpass_hz >= self.lowpass_hz:
            raise ValueError(f"device {self.name!r}: highpass_hz must be below lowpass_hz")
        return self


REFERENCE_DEVICE = DeviceSpec(
    name="reference",
    sampling_rate_hz=500,
    record_seconds=10,
    highpass_hz=0.05,
    lowpass_hz=150.0,
    filter_phase="zero",
    hum_uv=0.0,
    noise_uv=8.0,
    noise_colour=1.0,
    wander_mv=0.05,
    adc_lsb_uv=1.0,
    gain_error=0.0,
    gain_jitter=0.005,
)
"""The device every device becomes at artefact strength 0 (AHA diagnostic band, 500 Hz, 1 µV)."""


class AgeSpec(_Spec):
    """Age at a patient's first ECG: a normal distribution truncated to [min, max] years."""

    mean: float = Field(default=60.0, ge=0, le=110)
    sd: float = Field(default=15.0, gt=0)
    min: float = Field(default=18.0, ge=0)
    max: float = Field(default=95.0, le=110)

    @model_validator(mode="after")
    def _ordered(self) -> AgeSpec:
        if not self.min < self.max:
            raise ValueError(f"age: min ({self.min}) must be below max ({self.max})")
        return self


class DemographicsSpec(_Spec):
    """Who the patients are."""

    age: AgeSpec = AgeSpec()
    female_fraction: float = Field(default=0.5, ge=0, le=1)
    ethnicity: dict[str, float] = Field(
        default_factory=dict, description="label -> share; empty: the cohort records no ethnicity"
    )

    @field_validator("ethnicity")
    @classmethod
    def _positive_shares(cls, value: dict[str, float]) -> dict[str, float]:
        if any(share < 0 for share in value.values()) or (value and sum(value.values()) <= 0):
            raise ValueError("ethnicity shares must be >= 0 and not all zero")
        return value


class VisitsSpec(_Spec):
    """How many ECGs a patient has and how far apart they are.

    The number of ECGs is ``min_ecgs`` plus a geometric count with mean
    ``mean_ecgs - min_ecgs``, capped at ``max_ecgs``: most patients have few
    ECGs and a long tail has many, as in clinical archives.
    """

    min_ecgs: int = Field(default=1, ge=1)
    mean_ecgs: float = Field(default=2.0, ge=1)
    max_ecgs: int = Field(default=10, ge=1)
    mean_years_between: float = Field(
        default=1.0, gt=0, description="mean time between two ECGs (years)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> VisitsSpec:
        if not self.min_ecgs <= self.mean_ecgs <= self.max_ecgs:
            raise ValueError("visits: need min_ecgs <= mean_ecgs <= max_ecgs")
        return self


class CohortSpec(_Spec):
    """One synthetic cohort: population, health mix, devices and output format."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    role: str = Field(
        default="", description="which real cohort's role it plays (documentation only)"
    )
    care_level: Literal["primary", "secondary", "volunteer"]
    output_format: Literal["ptbxl", "code15", "wfdb"]
    n_patients: int = Field(gt=0)
    mains_hz: Literal[50, 60]
    site: str = "site-1"
    first_year: int = Field(default=2010, ge=1950, le=2100)
    last_year: int = Field(default=2020, ge=1950, le=2100)
    demographics: DemographicsSpec = DemographicsSpec()
    visits: VisitsSpec = VisitsSpec()
    conditions: dict[str, float] = Field(
        default_factory=dict, description="SCP code -> prevalence at the cohort's mean age"
    )
    devices: list[DeviceSpec] = Field(min_length=1)
    artefact_strength: float = Field(
        default=1.0, ge=0, description="multiplies the global artefact strength"
    )
    exams_per_part: int = Field(
        default=20000, ge=1, description="CODE-15% layout: ECGs per exams_partK.hdf5"
    )

    @field_validator("conditions")
    @classmethod
    def _known_conditions(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(CONDITIONS))
        if unknown:
            raise ValueError(f"unknown conditions {unknown}; known: {sorted(CONDITIONS)}")
        if any(not 0.0 <= p < 1.0 for p in value.values()):
            raise ValueError("condition prevalences must be in [0, 1)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CohortSpec:
        if self.first_year > self.last_year:
            raise ValueError(f"cohort {self.name!r}: first_year is after last_year")
        names = [d.name for d in self.devices]
        if len(set(names)) != len(names):
            raise ValueError(f"cohort {self.name!r}: device names must be unique")
        return self


class SimulationSpec(_Spec):
    """Everything ``cape simulate`` needs: cohorts, seed, size and effect knobs."""

    cohorts: list[CohortSpec] = Field(min_length=1)
    seed: int = Field(default=0, ge=0)
    scale: float = Field(default=1.0, gt=0, description="multiplies every cohort's n_patients")
    age_effect_scale: float = Field(default=1.0, ge=0, description="multiplies every age effect")
    sex_effect_scale: float = Field(
        default=1.0, ge=0, description="multiplies every sex difference"
    )
    artefact_strength: float = Field(
        default=1.0,
        ge=0,
        description="0 identical devices, 1 the specified devices, > 1 exaggerated",
    )
    visit_variability: float = Field(
        default=1.0,
        ge=0,
        description=(
            "multiplies every visit-to-visit SD (traits, heart position and wave shapes, "
            "electrode placement): 0 a patient's ECGs differ only by age, rhythm, noise "
            "and device; > 1 harder positive pairs"
        ),
    )
    chunk_size: int = Field(
        default=64, ge=1, le=4096, description="ECGs synthesised per vectorised batch"
    )

    @model_validator(mode="after")
    def _unique_names(self) -> SimulationSpec:
        names = [c.name for c in self.cohorts]
        if len(set(names)) != len(names):
            raise ValueError(f"cohort names must be unique, got {names}")
        return self

    def n_patients(self, cohort: CohortSpec) -> int:
        """Patients of ``cohort`` after the size multiplier (at least 1)."""
        return max(1, round(cohort.n_patients * self.scale))

    def cohort(self, name: str) -> CohortSpec:
        """The cohort called ``name``.

        Raises:
            CapeError: no cohort has that name.
        """
        for cohort in self.cohorts:
            if cohort.name == name:
                return cohort
        raise CapeError(f"no cohort {name!r} in the spec; have {[c.name for c in self.cohorts]}")


def load_spec(path: str | Path) -> SimulationSpec:
    """Read a :class:`SimulationSpec` from a YAML (or JSON) file.

    Raises:
        CapeError: the file is missing, not YAML, or does not match the spec.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise CapeError(f"cannot read simulation spec {path}: {error}") from error
    except yaml.YAMLError as error:
        raise CapeError(f"simulation spec {path} is not valid YAML: {error}") from error
    try:
        return SimulationSpec.model_validate(data)
    except ValidationError as error:
        raise CapeError(f"simulation spec {path} is invalid:\n{error}") from error


def dump_spec(spec: SimulationSpec, path: str | Path) -> None:
    """Write ``spec`` as YAML; :func:`load_spec` reads it back to an equal spec."""
    Path(path).write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
