"""Lead names, their aliases, and the algebra that links the 12 standard leads.

CAPE keeps eight independent leads (I, II, V1-V6): the other four limb leads
are linear combinations of I and II (Einthoven and Goldberger), so they carry
no extra information for the network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STANDARD_12 = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
STORE_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")

_ALIASES = {
    "I": "I",
    "DI": "I",
    "LEADI": "I",
    "L1": "I",
    "II": "II",
    "DII": "II",
    "LEADII": "II",
    "L2": "II",
    "III": "III",
    "DIII": "III",
    "LEADIII": "III",
    "L3": "III",
    "AVR": "aVR",
    "AVL": "aVL",
    "AVF": "aVF",
    "-AVR": "-aVR",
}
for _name in ("AVR", "AVL", "AVF", "-AVR"):
    _ALIASES["LEAD" + _name] = _ALIASES[_name]
for _k in range(1, 7):
    _ALIASES[f"V{_k}"] = f"V{_k}"
    _ALIASES[f"LEADV{_k}"] = f"V{_k}"
    _ALIASES[f"C{_k}"] = f"V{_k}"


def canonical_lead_name(name: str) -> str | None:
    """Map a lead name as written by a device or format to its standard name.

    Handles ``DI``/``I``, ``AVR``/``aVR``, ``Lead II``, ``C1``/``V1`` and
    DICOM-style ``Lead I (Einthoven)``. Returns ``None`` for names that are not
    one of the 12 standard leads.
    """
    key = name.strip().upper()
    key = key.split("(")[0].strip()  # "LEAD I (EINTHOVEN)" -> "LEAD I"
    key = key.replace(" ", "").replace("_", "")
    return _ALIASES.get(key)


class MissingLeadsError(ValueError):
    """Raised when the leads needed for the store cannot be found or derived."""


class AmbiguousLeadsError(ValueError):
    """Raised when two channels map to the same standard lead (e.g. ``I`` and ``DI``)."""


def select_store_leads(signal: np.ndarray, lead_names: Sequence[str]) -> np.ndarray:
    """Return the eight store leads (I, II, V1-V6) from a multi-lead signal.

    Args:
        signal: ``(n_leads, n_samples)`` array; rows follow ``lead_names``.
        lead_names: names as written in the source; matched through aliases.

    Returns:
        ``(8, n_samples)`` float array in the order of :data:`STORE_LEADS`.
        If I or II is missing it is derived from the other and III
        (III = II - I); aVR/aVL/aVF are used as a last resort.

    Raises:
        MissingLeadsError: a required lead is absent and cannot be derived.
        AmbiguousLeadsError: two channels map to the same standard lead.
    """
    if signal.ndim != 2 or signal.shape[0] != len(lead_names):
        raise ValueError(
            f"signal of shape {signal.shape} does not match {len(lead_names)} lead names"
        )
    index: dict[str, int] = {}
    for i, name in enumerate(lead_names):
        canon = canonical_lead_name(name)
        if canon is None:
            continue
        if canon in index:
            # Two channels claiming one lead: which is right cannot be known.
            raise AmbiguousLeadsError(
                f"channels {index[canon] + 1} ({lead_names[index[canon]]!r}) and {i + 1} "
                f"({name!r}) are both lead {canon}"
            )
        index[canon] = i
    rows: dict[str, np.ndarray] = {k: signal[i] for k, i in index.items()}
    if "-aVR" in rows and "aVR" not in rows:
        rows["aVR"] = -rows["-aVR"]
    # Derive missing limb leads (Einthoven: III = II - I; Goldberger augmented leads).
    if "I" not in rows:
        if "II" in rows and "III" in rows:
            rows["I"] = rows["II"] - rows["III"]
        elif "aVL" in rows and "aVF" in rows:
            # aVL = I - II/2, aVF = II - I/2  =>  I = (4 aVL + 2 aVF) / 3
            rows["I"] = (4.0 * rows["aVL"] + 2.0 * rows["aVF"]) / 3.0
    if "II" not in rows:
        if "I" in rows and "III" in rows:
            rows["II"] = rows["I"] + rows["III"]
        elif "I" in rows and "aVF" in rows:
            rows["II"] = rows["aVF"] + rows["I"] / 2.0
        elif "I" in rows and "aVR" in rows:
            rows["II"] = -2.0 * rows["aVR"] - rows["I"]
    missing = [lead for lead in STORE_LEADS if lead not in rows]
    if missing:
        raise MissingLeadsError(f"missing leads {missing} (found {list(lead_names)})")
    return np.stack([np.asarray(rows[lead], dtype=np.float64) for lead in STORE_LEADS])


def limb_leads_from_i_ii(lead_i: np.ndarray, lead_ii: np.ndarray) -> dict[str, np.ndarray]:
    """III, aVR, aVL and aVF from leads I and II (Einthoven's and Goldberger's laws)."""
    return {
        "III": lead_ii - lead_i,
        "aVR": -(lead_i + lead_ii) / 2.0,
        "aVL": lead_i - lead_ii / 2.0,
        "aVF": lead_ii - lead_i / 2.0,
    }


_UNIT_SCALE_TO_MV = {
    "mv": 1.0,
    "millivolt": 1.0,
    "millivolts": 1.0,
    "uv": 1e-3,
    "µv": 1e-3,
    "μv": 1e-3,
    "microvolt": 1e-3,
    "microvolts": 1e-3,
    "v": 1e3,
    "volt": 1e3,
    "volts": 1e3,
    "nv": 1e-6,
}


def unit_scale_to_mv(units: str) -> float:
    """Factor that converts a signal in ``units`` to millivolts.

    Raises:
        ValueError: the unit is not a voltage unit CAPE knows.
    """
    key = units.strip().lower().replace(" ", "")
    if key not in _UNIT_SCALE_TO_MV:
        raise ValueError(f"unknown signal unit {units!r}; expected mV, uV or V")
    return _UNIT_SCALE_TO_MV[key]
