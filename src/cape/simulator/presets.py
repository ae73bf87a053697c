"""Built-in simulation presets: ``demo`` (five cohorts in the paper's roles) and ``tiny``.

The five demo cohorts have made-up names and play the roles of the paper's
cohorts (docs/simulator.md says why each setting was chosen):

- ``harbor``  BIDMC's role: US secondary care, many ECGs per patient, an
  ethnicity column, 60 Hz, generic WFDB + metadata (MIMIC-IV-ECG style).
- ``serra``   CODE's role: Brazilian primary care, two devices recording 7 s
  and 10 s, 60 Hz, CODE-15% layout.
- ``jade``    SHZS's role: Chinese primary care, its own 1000 Hz device, 50 Hz.
- ``meadow``  UK Biobank's role: healthy volunteers aged 45-82 (peak mid-60s),
  few conditions, 50 Hz.
- ``linden``  PTB-XL's role: German secondary care, PTB-XL layout with
  strat_fold and scp_codes, 50 Hz, rich in MI/ST-T/conduction labels.
"""

from __future__ import annotations

from cape.errors import CapeError
from cape.simulator.cohorts import (
    AgeSpec,
    CohortSpec,
    DemographicsSpec,
    DeviceSpec,
    SimulationSpec,
    VisitsSpec,
    load_spec,
)

# Age effects at literature size are barely learnable from a small encoder's
# features (a feasibility prototype: ridge MAE 8.5 vs 8.8 for the mean);
# 2.5x made age clearly learnable. The demo uses 2.5 so that the demo's age
# results are informative; studies of realism should set it back to 1.
DEMO_AGE_EFFECT_SCALE = 2.5

_SECONDARY_CARE = {
    "CRBBB": 0.05,
    "IRBBB": 0.03,
    "CLBBB": 0.04,
    "1AVB": 0.07,
    "AFIB": 0.09,
    "LVH": 0.07,
    "IMI": 0.06,
    "AMI": 0.04,
    "ISC_": 0.08,
}
_PRIMARY_CARE = {
    "CRBBB": 0.03,
    "IRBBB": 0.02,
    "CLBBB": 0.015,
    "1AVB": 0.03,
    "AFIB": 0.025,
    "LVH": 0.03,
    "IMI": 0.015,
    "AMI": 0.01,
    "ISC_": 0.03,
}
_VOLUNTEERS = {
    "CRBBB": 0.02,
    "IRBBB": 0.02,
    "CLBBB": 0.005,
    "1AVB": 0.03,
    "AFIB": 0.01,
    "LVH": 0.02,
    "IMI": 0.01,
    "AMI": 0.005,
    "ISC_": 0.02,
}
# PTB-XL is enriched for pathology: ~25 % MI, ~24 % ST/T, ~22 % conduction, ~12 % hypertrophy.
_PTBXL_LIKE = {
    "CRBBB": 0.05,
    "IRBBB": 0.05,
    "CLBBB": 0.05,
    "1AVB": 0.04,
    "AFIB": 0.07,
    "LVH": 0.11,
    "IMI": 0.12,
    "AMI": 0.10,
    "ISC_": 0.12,
}


def _demo_cohorts() -> list[CohortSpec]:
    harbor = CohortSpec(
        name="harbor",
        role="BIDMC (secondary care, many ECGs per patient, ethnicity)",
        care_level="secondary",
        output_format="wfdb",
        n_patients=1200,
        mains_hz=60,
        site="harbor-1",
        first_year=2008,
        last_year=2019,
        demographics=DemographicsSpec(
            age=AgeSpec(mean=62, sd=17, min=18, max=95),
            female_fraction=0.48,
            ethnicity={
                "White": 0.66,
                "Black": 0.14,
                "Hispanic": 0.07,
                "Asian": 0.05,
                "Other": 0.08,
            },
        ),
        visits=VisitsSpec(min_ecgs=1, mean_ecgs=3.0, max_ecgs=10, mean_years_between=1.0),
        conditions=_SECONDARY_CARE,
        devices=[
            DeviceSpec(
                name="Meridian MX-12",
                sampling_rate_hz=500,
                record_seconds=10,
                highpass_hz=0.05,
                lowpass_hz=150,
                filter_phase="zero",
                hum_uv=6,
                noise_uv=8,
                noise_colour=1.0,
                wander_mv=0.08,
                adc_lsb_uv=4.88,
                gain_error=0.01,
            )
        ],
    )
    serra = CohortSpec(
        name="serra",
        role="CODE (primary care, telehealth, two devices, 7 s and 10 s)",
        care_level="primary",
        output_format="code15",
        n_patients=1800,
        mains_hz=60,
        site="serra-tele",
        first_year=2010,
        last_year=2017,
        exams_per_part=1000,
        demographics=DemographicsSpec(
            age=AgeSpec(mean=52, sd=18, min=16, max=95), female_fraction=0.60
        ),
        visits=VisitsSpec(min_ecgs=1, mean_ecgs=1.6, max_ecgs=8, mean_years_between=1.5),
        conditions=_PRIMARY_CARE,
        devices=[
            DeviceSpec(
                name="Tecnova TEB-7",
                share=0.55,
                sampling_rate_hz=500,
                record_seconds=7,
                highpass_hz=0.5,
                lowpass_hz=40,
                filter_phase="causal",
                hum_uv=12,
                noise_uv=12,
                noise_colour=0.5,
                wander_mv=0.15,
                adc_lsb_uv=2.44,
                gain_error=0.03,
                gain_jitter=0.01,
            ),
            DeviceSpec(
                name="Vitalis V10",
                share=0.45,
                sampling_rate_hz=250,
                record_seconds=10,
                highpass_hz=0.05,
                lowpass_hz=100,
                filter_phase="zero",
                hum_uv=8,
                noise_uv=10,
                noise_colour=1.0,
                wander_mv=0.10,
                adc_lsb_uv=5.0,
                gain_error=-0.02,
            ),
        ],
    )
    jade = CohortSpec(
        name="jade",
        role="SHZS (primary care, its own device, 50 Hz)",
        care_level="primary",
        output_format="wfdb",
        n_patients=1100,
        mains_hz=50,
        site="jade-3",
        first_year=2012,
        last_year=2021,
        demographics=DemographicsSpec(
            age=AgeSpec(mean=55, sd=15, min=18, max=95), female_fraction=0.52
        ),
        visits=VisitsSpec(min_ecgs=1, mean_ecgs=2.2, max_ecgs=8, mean_years_between=1.0),
        conditions=_PRIMARY_CARE,
        devices=[
            DeviceSpec(
                name="Huaxin HX-1200",
                sampling_rate_hz=1000,
                record_seconds=10,
                highpass_hz=0.67,
                lowpass_hz=100,
                filter_phase="zero",
                hum_uv=15,
                noise_uv=10,
                noise_colour=1.5,
                wander_mv=0.10,
                adc_lsb_uv=2.5,
                gain_error=0.02,
            )
        ],
    )
    meadow = CohortSpec(
        name="meadow",
        role="UK Biobank (healthy volunteers, narrow age range peaking mid-60s)",
        care_level="volunteer",
        output_format="wfdb",
        n_patients=1400,
        mains_hz=50,
        site="meadow-imaging",
        first_year=2014,
        last_year=2020,
        demographics=DemographicsSpec(
            age=AgeSpec(mean=64, sd=7.5, min=45, max=82), female_fraction=0.52
        ),
        visits=VisitsSpec(min_ecgs=1, mean_ecgs=1.5, max_ecgs=3, mean_years_between=2.5),
        conditions=_VOLUNTEERS,
        devices=[
            DeviceSpec(
                name="Cardiolab CL-5",
                sampling_rate_hz=500,
                record_seconds=10,
                highpass_hz=0.05,
                lowpass_hz=150,
                filter_phase="causal",
                hum_uv=4,
                noise_uv=6,
                noise_colour=1.0,
                wander_mv=0.05,
                adc_lsb_uv=5.0,
            )
        ],
    )
    linden = CohortSpec(
        name="linden",
        role="PTB-XL (secondary care, PTB-XL layout, strat_fold, scp_codes)",
        care_level="secondary",
        output_format="ptbxl",
        n_patients=1600,
        mains_hz=50,
        site="site 2",
        first_year=1989,
        last_year=1996,
        demographics=DemographicsSpec(
            age=AgeSpec(mean=60, sd=17, min=18, max=95), female_fraction=0.48
        ),
        visits=VisitsSpec(min_ecgs=1, mean_ecgs=1.3, max_ecgs=5, mean_years_between=0.8),
        conditions=_PTBXL_LIKE,
        devices=[
            DeviceSpec(
                name="SC-12 E",
                share=0.7,
                sampling_rate_hz=500,
                record_seconds=10,
                highpass_hz=0.05,
                lowpass_hz=150,
                filter_phase="causal",
                hum_uv=10,
                noise_uv=10,
                noise_colour=1.0,
                wander_mv=0.08,
                adc_lsb_uv=1.0,
            ),
            DeviceSpec(
                name="AT-6 C",
                share=0.3,
                sampling_rate_hz=500,
                record_seconds=10,
                highpass_hz=0.5,
                lowpass_hz=100,
                filter_phase="causal",
                hum_uv=10,
                noise_uv=12,
                noise_colour=1.0,
                wander_mv=0.1,
                adc_lsb_uv=1.0,
                gain_error=0.015,
            ),
        ],
    )
    return [harbor, serra, jade, meadow, linden]


def demo() -> SimulationSpec:
    """Five cohorts, ~2,000-3,600 ECGs each (~13,000 in all), sized for a 15-minute demo on 2 cores."""
    return SimulationSpec(cohorts=_demo_cohorts(), seed=0, age_effect_scale=DEMO_AGE_EFFECT_SCALE)


def tiny() -> SimulationSpec:
    """The demo's five cohorts with 12 patients each (~120 ECGs): seconds, for unit tests."""
    cohorts = [
        c.model_copy(update={"n_patients": 12, "exams_per_part": 10}) for c in _demo_cohorts()
    ]
    return SimulationSpec(
        cohorts=cohorts, seed=0, age_effect_scale=DEMO_AGE_EFFECT_SCALE, chunk_size=32
    )


PRESETS = {"demo": demo, "tiny": tiny}


def preset(name: str) -> SimulationSpec:
    """A built-in spec by name.

    Raises:
        CapeError: unknown preset.
    """
    if name not in PRESETS:
        raise CapeError(f"unknown simulator preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()


# The spec's global knobs that a study or the command line may override.
KNOBS = ("scale", "age_effect_scale", "sex_effect_scale", "artefact_strength", "visit_variability")


def resolve_spec(source: str, seed: int = 0, **knobs: float | None) -> SimulationSpec:
    """A preset name or spec file, with its seed and any knob (keys of :data:`KNOBS`) set.

    ``None`` leaves a knob at the spec's value.

    Raises:
        CapeError: unknown preset or knob.
    """
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise CapeError(f"unknown simulator knobs {unknown}; known: {list(KNOBS)}")
    spec = preset(source) if source in PRESETS else load_spec(source)
    updates: dict[str, object] = {"seed": seed}
    updates.update({name: value for name, value in knobs.items() if value is not None})
    return spec.model_copy(update=updates)
