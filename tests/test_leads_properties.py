"""Property-based checks of the lead laws (Einthoven, Goldberger) for any signal.

``derandomize=True``: the examples are a fixed function of the test, so CI is
reproducible; ``max_examples`` keeps each property to a few seconds.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cape.leads import limb_leads_from_i_ii, select_store_leads

PROPERTY = settings(max_examples=60, derandomize=True, deadline=None, database=None)
CHEST = ["V1", "V2", "V3", "V4", "V5", "V6"]


@st.composite
def two_limb_leads(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Leads I and II in mV: any length 1..300, amplitudes up to ±20 mV, with
    constant stretches, exact zeros and sign flips as they come."""
    n = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([0.0, 1e-3, 1.0, 20.0]))
    rng = np.random.default_rng(seed)
    lead_i, lead_ii = scale * rng.standard_normal((2, n))
    if draw(st.booleans()):
        lead_i[: n // 2] = lead_i[0]  # a flat stretch
    return lead_i, lead_ii


# Rounding bound: each derived value is a sum of at most three terms of at most
# ~100 mV in magnitude, each operation off by half an ulp: < 1e-13 mV, far below
# 1e-9 mV (a nanovolt).
ATOL_MV = 1e-9


@PROPERTY
@given(two_limb_leads())
def test_einthoven_and_goldberger_hold_for_any_signal(leads) -> None:
    lead_i, lead_ii = leads
    limb = limb_leads_from_i_ii(lead_i, lead_ii)
    np.testing.assert_allclose(limb["III"], lead_ii - lead_i, atol=ATOL_MV, rtol=0)
    np.testing.assert_allclose(lead_i + limb["III"], lead_ii, atol=ATOL_MV, rtol=0)
    # Goldberger: the augmented leads sum to zero; each is a fixed combination of I, II.
    np.testing.assert_allclose(limb["aVR"] + limb["aVL"] + limb["aVF"], 0.0, atol=ATOL_MV, rtol=0)
    np.testing.assert_allclose(limb["aVR"], -(lead_i + lead_ii) / 2, atol=ATOL_MV, rtol=0)
    np.testing.assert_allclose(limb["aVL"], (lead_i - limb["III"]) / 2, atol=ATOL_MV, rtol=0)
    np.testing.assert_allclose(limb["aVF"], (lead_ii + limb["III"]) / 2, atol=ATOL_MV, rtol=0)


# Every set of two limb leads from which I and II follow (with II or I given, or neither).
SUFFICIENT = [
    ("II", "III"),
    ("I", "III"),
    ("aVL", "aVF"),
    ("I", "aVF"),
    ("I", "aVR"),
    ("I", "-aVR"),  # the inverted aVR some devices export
    ("I", "II"),
]


@PROPERTY
@given(two_limb_leads(), st.sampled_from(SUFFICIENT), st.randoms(use_true_random=False))
def test_i_and_ii_recovered_from_any_sufficient_pair(leads, pair, random) -> None:
    """Whichever two limb leads a file holds (in any channel order), the stored
    I and II equal the true ones; chest leads pass through untouched."""
    lead_i, lead_ii = leads
    available = {"I": lead_i, "II": lead_ii, **limb_leads_from_i_ii(lead_i, lead_ii)}
    available["-aVR"] = -available["aVR"]
    chest = np.arange(6 * lead_i.size, dtype=np.float64).reshape(6, -1)
    names = [*pair, *CHEST]
    rows = [available[name] for name in pair] + list(chest)
    order = list(range(len(names)))
    random.shuffle(order)
    out = select_store_leads(np.stack([rows[k] for k in order]), [names[k] for k in order])
    np.testing.assert_allclose(out[0], lead_i, atol=ATOL_MV, rtol=0)
    np.testing.assert_allclose(out[1], lead_ii, atol=ATOL_MV, rtol=0)
    np.testing.assert_array_equal(out[2:], chest)
