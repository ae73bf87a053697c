"""Synthetic multi-cohort ECGs with known ground truth, written in real dataset layouts.

Typical use::

    from cape.simulator import preset, simulate
    simulate(preset("demo"), "data/synthetic", workers=2)

or ``cape simulate --preset demo --out data/synthetic``. See docs/simulator.md.
"""

from cape.simulator.cohorts import (
    REFERENCE_DEVICE,
    AgeSpec,
    CohortSpec,
    DemographicsSpec,
    DeviceSpec,
    SimulationSpec,
    VisitsSpec,
    dump_spec,
    load_spec,
)
from cape.simulator.generate import iter_cohort_chunks, simulate
from cape.simulator.presets import PRESETS, preset
from cape.simulator.writers import SignalChunk

__all__ = [
    "PRESETS",
    "REFERENCE_DEVICE",
    "AgeSpec",
    "CohortSpec",
    "DemographicsSpec",
    "DeviceSpec",
    "SignalChunk",
    "SimulationSpec",
    "VisitsSpec",
    "dump_spec",
    "iter_cohort_chunks",
    "load_spec",
    "preset",
    "simulate",
]
