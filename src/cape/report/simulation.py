"""What a run on simulated cohorts measures: the effects the simulator injected, listed.

A study whose ``simulate:`` section made its cohorts measures how the methods
respond to what the simulator put into the ECGs: age and sex effects of the
sizes it was told, device artefacts at the strength it was told, and
visit-to-visit variability. The report says so at the top and lists those
effects, read from the simulate stage's resolved spec
(``data/_truth/simulation.yaml``) or, if that is missing, rebuilt from the
study file's ``simulate:`` section and the bundled presets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cape.report.collect import RunData
from cape.report.context import ReportContext
from cape.report.document import Paragraph, Section, TableBlock

TRUTH_FILE = ("data", "_truth", "simulation.yaml")
_DEVICE_FIELDS = {
    "sampling_rate_hz": "rate (Hz)",
    "record_seconds": "length (s)",
    "highpass_hz": "high-pass (Hz)",
    "lowpass_hz": "low-pass (Hz)",
    "filter_phase": "filter",
    "hum_uv": "mains hum (µV)",
    "noise_uv": "noise (µV RMS)",
    "noise_colour": "noise colour (1/f^c)",
    "wander_mv": "baseline wander (mV)",
    "adc_lsb_uv": "ADC step (µV)",
    "gain_error": "gain error",
}


@dataclass
class Simulation:
    """The resolved simulator spec of a run and where it was read from."""

    spec: Any  # cape.simulator.cohorts.SimulationSpec
    source: str
    preset: str


def read_simulation(data: RunData) -> Simulation | None:
    """The run's simulator spec, or None when its cohorts were not simulated.

    Appends a message to ``data.messages`` when the study simulated but no
    spec can be read.
    """
    section = data.study.get("simulate")
    if not isinstance(section, dict):
        return None
    preset = str(section.get("preset", "demo"))
    path = data.run_dir.joinpath(*TRUTH_FILE)
    try:
        if path.is_file():
            from cape.simulator.cohorts import load_spec

            return Simulation(load_spec(path), str(path.relative_to(data.run_dir)), preset)
        from cape.simulator.presets import KNOBS, resolve_spec

        knobs = {knob: section.get(knob) for knob in KNOBS}
        spec = resolve_spec(preset, int(section.get("seed", 0)), **knobs)
        return Simulation(spec, "the study file's simulate: section", preset)
    except Exception as error:  # a report must not fail for this: say what is missing
        data.messages.append(f"simulated cohorts, but their spec could not be read: {error}")
        return Simulation(None, "unreadable", preset)


def _knob(spec: Any, name: str, default: float = 1.0) -> float:
    return float(getattr(spec, name, default))


def summary_lines(simulation: Simulation) -> list[str]:
    """Plain sentences for the console and the report: what the run measures."""
    spec = simulation.spec
    lines = [
        "These cohorts were SIMULATED (preset "
        f"{simulation.preset!r}): this run measures how the methods respond to the effects "
        "the simulator injected, not to real physiology or real devices."
    ]
    if spec is None:
        return lines
    visit = getattr(spec, "visit_variability", None)
    lines.append(
        f"Injected: age effects x{_knob(spec, 'age_effect_scale'):g} and sex effects "
        f"x{_knob(spec, 'sex_effect_scale'):g} of the literature sizes; device artefacts at "
        f"strength {_knob(spec, 'artefact_strength'):g} (0: identical devices, 1: as "
        "specified)"
        + ("" if visit is None else f"; visit-to-visit variability x{float(visit):g}")
        + f"; {len(spec.cohorts)} cohorts (seed {spec.seed}, size x{_knob(spec, 'scale'):g})."
    )
    return lines


def _per_decade(value: float, log: bool, unit: str) -> str:
    if log:
        return f"{(math.exp(10 * value) - 1) * 100:+.1f} %"
    return f"{10 * value:+.2f} {unit}"


def trait_table(spec: Any) -> pd.DataFrame:
    """Per trait: the injected age effect per decade, the male − female difference, SDs."""
    from cape.simulator.physiology import TRAITS

    age_scale, sex_scale = _knob(spec, "age_effect_scale"), _knob(spec, "sex_effect_scale")
    visit_scale = float(getattr(spec, "visit_variability", 1.0) or 1.0)
    rows = {}
    for name, trait in TRAITS.items():
        unit = name.rsplit("_", 1)[-1] if "_" in name else ""
        unit = {"bpm": "bpm", "ms": "ms", "deg": "°", "mv": "mV"}.get(unit, "")
        if trait.log:
            sex = f"{(math.exp(trait.male_delta * sex_scale) - 1) * 100:+.1f} %"
            between = f"{trait.patient_sd:.2f} log"
            within = f"{trait.visit_sd * visit_scale:.2f} log"
        else:
            sex = f"{trait.male_delta * sex_scale:+.2f} {unit}"
            between = f"{trait.patient_sd:g} {unit}"
            within = f"{trait.visit_sd * visit_scale:g} {unit}"
        rows[name] = {
            "age effect per decade": _per_decade(trait.age_slope * age_scale, trait.log, unit),
            "men − women": sex,
            "between patients (SD)": between,
            "between visits (SD)": within,
        }
    frame = pd.DataFrame(rows).T
    frame.index.name = "ECG trait"
    return frame


def device_table(spec: Any) -> pd.DataFrame:
    """Per cohort and device: share, artefact strength and the device's parameters."""
    rows = []
    strength = _knob(spec, "artefact_strength")
    for cohort in spec.cohorts:
        for device in cohort.devices:
            row = {
                "cohort": cohort.name,
                "device": device.name,
                "share": f"{device.share:g}",
                "artefact strength": f"{strength * cohort.artefact_strength:g}",
            }
            for field, title in _DEVICE_FIELDS.items():
                row[title] = str(getattr(device, field, "–"))
            rows.append(row)
    return pd.DataFrame(rows).set_index(["cohort", "device"])


def visit_table(spec: Any) -> pd.DataFrame:
    """Per cohort: ECGs per patient and the time between them."""
    rows = {
        cohort.name: {
            "patients": f"{spec.n_patients(cohort):,}",
            "ECGs per patient, mean [min–max]": f"{cohort.visits.mean_ecgs:g} "
            f"[{cohort.visits.min_ecgs}–{cohort.visits.max_ecgs}]",
            "years between ECGs (mean)": f"{cohort.visits.mean_years_between:g}",
            "mains (Hz)": str(cohort.mains_hz),
            "role": cohort.role or "–",
        }
        for cohort in spec.cohorts
    }
    frame = pd.DataFrame(rows).T
    frame.index.name = "cohort"
    return frame


def simulation_section(context: ReportContext) -> Section | None:
    """The "Simulated cohorts" section, or None for real cohorts."""
    simulation = read_simulation(context.data)
    if simulation is None:
        return None
    section = Section("Simulated cohorts: what this run measures", "simulation")
    for line in summary_lines(simulation):
        section.add(Paragraph(line))
    spec = simulation.spec
    if spec is None:
        return section.note("The simulator's spec could not be read; effects not listed.")
    section.add(
        Paragraph(
            "Agreement or disagreement with the paper's claims is therefore about these "
            "effects. A trait's value is base + age effect + sex effect + a patient's own "
            "offset + visit-to-visit noise (docs/simulator.md); device artefacts move each "
            "device from a common reference device (strength 0) to its own parameters "
            f"(strength 1). Spec read from {simulation.source}."
        )
    )
    section.add(TableBlock(trait_table(spec), "Injected age and sex effects and variability"))
    section.add(TableBlock(device_table(spec), "Devices and their artefacts"))
    section.add(TableBlock(visit_table(spec), "Patients and visits"))
    return section


def simulation_summary(run_dir: str | Path) -> list[str]:
    """:func:`summary_lines` for a run directory (empty for real cohorts); for consoles."""
    run_dir = Path(run_dir)
    data = RunData(run_dir=run_dir)
    study_file = run_dir / "study.yaml"
    if study_file.is_file():
        data.study = yaml.safe_load(study_file.read_text()) or {}
    simulation = read_simulation(data)
    return [] if simulation is None else summary_lines(simulation)
