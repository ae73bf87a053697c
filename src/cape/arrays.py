"""Raw ECG arrays to what the cohort store would hold for them, without files.

The ingest chain for notebooks: lead selection (and derivation), unit
conversion, resampling to 400 Hz with band-pass and mains notch, the 10 s
slot, and the int16 microvolt rounding of the store -- the same functions
``cape ingest`` calls, in the same order, so an array that goes through
:func:`store_slots` gives the samples ``CohortStore.read`` would give had the
array been ingested. Quality control is not run here: nothing is
quarantined, and records that ingest would reject (shorter than 7 s,
saturated) are embedded anyway, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cape.leads import STANDARD_12, STORE_LEADS, select_store_leads, unit_scale_to_mv
from cape.preprocessing import PreprocessingConfig, preprocess
from cape.store.layout import SLOT_SAMPLES
from cape.store.slot import fit_to_slot, to_int16_microvolts

logger = logging.getLogger(__name__)

Signals = np.ndarray | Sequence[np.ndarray]


@dataclass(frozen=True)
class StoreSlots:
    """Records as the store keeps them.

    Attributes:
        microvolts: int16 ``(n, 8, 4000)``, leads I, II, V1-V6 at 400 Hz,
            zeros after each record's valid length.
        valid_lengths: int64 ``(n,)`` valid samples per slot.
        clipped: bool ``(n,)``, records that exceeded the int16 range (ingest
            would quarantine them as ``saturated``).
    """

    microvolts: np.ndarray
    valid_lengths: np.ndarray
    clipped: np.ndarray

    def __len__(self) -> int:
        return len(self.valid_lengths)

    def read(self, index: int) -> np.ndarray:
        """Record ``index`` as float32 mV ``(8, 4000)``, exactly as ``CohortStore.read`` scales."""
        return self.microvolts[index].astype(np.float32) * np.float32(1e-3)


def default_lead_names(n_leads: int) -> tuple[str, ...]:
    """Lead order assumed when none is given: the standard 12 or the store's 8.

    Raises:
        ValueError: any other number of leads (name them with ``leads=``).
    """
    if n_leads == len(STANDARD_12):
        return STANDARD_12
    if n_leads == len(STORE_LEADS):
        return STORE_LEADS
    raise ValueError(
        f"signals have {n_leads} leads; without `leads=` only 12 "
        f"({', '.join(STANDARD_12)}) or 8 ({', '.join(STORE_LEADS)}) are understood"
    )


def as_records(signals: Signals) -> list[np.ndarray]:
    """Split ``(n, leads, samples)`` (or one ``(leads, samples)``, or a list) into records.

    Raises:
        ValueError: a record that is not 2-D, or records with different lead counts.
    """
    if isinstance(signals, np.ndarray):
        if signals.ndim == 2:
            signals = signals[np.newaxis]
        if signals.ndim != 3:
            raise ValueError(
                f"signals must be (n, leads, samples) or a list of (leads, samples) arrays, "
                f"got shape {signals.shape}"
            )
    records = [np.asarray(record) for record in signals]
    for k, record in enumerate(records):
        if record.ndim != 2:
            raise ValueError(f"record {k} has shape {record.shape}; expected (leads, samples)")
    if len({record.shape[0] for record in records}) > 1:
        raise ValueError("records have different numbers of leads; call once per lead layout")
    return records


def store_slots(
    signals: Signals,
    sampling_rate_hz: float,
    leads: Sequence[str] | None = None,
    units: str = "mV",
    mains_hz: float | None = None,
    config: PreprocessingConfig | None = None,
) -> StoreSlots:
    """Run raw ECGs through ingest's lead selection, preprocessing, slot and int16 rounding.

    Args:
        signals: ``(n, leads, samples)`` array, one ``(leads, samples)`` record,
            or a list of ``(leads, samples)`` records of different lengths, at
            ``sampling_rate_hz``, in ``units``, all samples valid.
        sampling_rate_hz: source sampling rate in Hz.
        leads: lead names in row order, any common spelling (``DI``, ``AVR``,
            ``C1``, ...); ``None``: the standard 12 (I, II, III, aVR, aVL, aVF,
            V1-V6) for 12 rows or I, II, V1-V6 for 8.
        units: ``"mV"``, ``"uV"`` or ``"V"``.
        mains_hz: mains frequency for the notch (50 or 60); ``None``: no notch.
        config: preprocessing parameters (ingest's defaults when ``None``).

    Returns:
        :class:`StoreSlots`, one slot per record, in input order.

    Raises:
        ValueError: bad shapes, unknown units, missing leads that cannot be
            derived, non-finite samples, a record too short to filter.
    """
    config = config or PreprocessingConfig()
    records = as_records(signals)
    if not records:
        raise ValueError("no signals to preprocess")
    names = list(leads) if leads is not None else list(default_lead_names(records[0].shape[0]))
    scale = unit_scale_to_mv(units)
    # As ingest: float64 source, eight store leads, then millivolts.
    selected = [select_store_leads(np.asarray(r, dtype=np.float64), names) * scale for r in records]
    n = len(selected)
    microvolts = np.zeros((n, len(STORE_LEADS), SLOT_SAMPLES), dtype=np.int16)
    valid = np.zeros(n, dtype=np.int64)
    clipped = np.zeros(n, dtype=bool)
    lengths = np.array([record.shape[1] for record in selected])
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        result = preprocess(
            np.stack([selected[k] for k in rows]), sampling_rate_hz, mains_hz, config
        )
        slots, kept = fit_to_slot(result.signals, result.valid_lengths, SLOT_SAMPLES)
        microvolts[rows], clipped[rows] = to_int16_microvolts(slots)
        valid[rows] = kept
    short = np.flatnonzero(valid < round(config.min_seconds * config.target_rate_hz))
    if short.size:
        logger.warning(
            "records %s are shorter than %g s: ingest would quarantine them (too_short)",
            short.tolist()[:10],
            config.min_seconds,
        )
    if clipped.any():
        logger.warning(
            "records %s exceed ±32.767 mV after preprocessing and were saturated: ingest "
            "would quarantine them (saturated)",
            np.flatnonzero(clipped).tolist()[:10],
        )
    return StoreSlots(microvolts=microvolts, valid_lengths=valid, clipped=clipped)
