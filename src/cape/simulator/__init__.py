"""Synthetic multi-cohort ECGs with known ground truth, written in real dataset layouts.

Typical use::

    from cape.simulator import preset, simulate
    simulate(preset("demo"), "data/synthetic", workers=2)

or ``cape simulate --preset demo --out data/synthetic``. See docs/simulator.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from cape.simulator.presets import PRESETS, preset

if TYPE_CHECKING:
    from cape.simulator.generate import iter_cohort_chunks, simulate
    from cape.simulator.writers import SignalChunk

# Signal generation (scipy, h5py) is imported on first use: reading and checking a
# spec (`cape study check`) needs only the spec models and the presets.
_LAZY = {
    "iter_cohort_chunks": "cape.simulator.generate",
    "simulate": "cape.simulator.generate",
    "SignalChunk": "cape.simulator.writers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cape.simulator' has no attribute {name!r}")


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
