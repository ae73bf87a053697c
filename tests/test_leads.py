import numpy as np
import pytest

from cape.leads import (
    STORE_LEADS,
    MissingLeadsError,
    canonical_lead_name,
    limb_leads_from_i_ii,
    select_store_leads,
    unit_scale_to_mv,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("DI", "I"),
        ("I", "I"),
        ("Lead II (Einthoven)", "II"),
        ("AVR", "aVR"),
        ("aVF", "aVF"),
        ("v1", "V1"),
        ("C6", "V6"),
        ("DIII", "III"),
        ("Lead aVR", "aVR"),
        ("Lead -aVR", "-aVR"),
        ("RESP", None),
    ],
)
def test_canonical_lead_names(raw, expected):
    assert canonical_lead_name(raw) == expected


def _twelve(rng, n=500):
    lead_i, lead_ii = rng.normal(size=(2, n))
    limb = limb_leads_from_i_ii(lead_i, lead_ii)
    precordial = rng.normal(size=(6, n))
    rows = [lead_i, lead_ii, limb["III"], limb["aVR"], limb["aVL"], limb["aVF"], *precordial]
    return np.stack(rows), [
        "I",
        "II",
        "III",
        "AVR",
        "AVL",
        "AVF",
        "V1",
        "V2",
        "V3",
        "V4",
        "V5",
        "V6",
    ]


def test_select_reorders_and_keeps_eight():
    """All eight rows, lead II included, are the source rows themselves (bit-exact:
    present leads are copied, not derived). Mutation caught: lead II taken from the
    wrong channel (III, aVF, or derived when present); the old test never looked at
    row 1."""
    rng = np.random.default_rng(0)
    signal, names = _twelve(rng)
    perm = rng.permutation(12)
    out = select_store_leads(signal[perm], [names[k] for k in perm])
    assert out.shape == (8, signal.shape[1])
    assert list(STORE_LEADS) == ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    np.testing.assert_array_equal(out, signal[[0, 1, 6, 7, 8, 9, 10, 11]])


@pytest.mark.parametrize("drop", ["I", "II"])
def test_missing_limb_lead_is_derived_from_iii(drop):
    rng = np.random.default_rng(1)
    signal, names = _twelve(rng)
    keep = [k for k, n in enumerate(names) if n not in {drop, "AVR", "AVL", "AVF"}]
    out = select_store_leads(signal[keep], [names[k] for k in keep])
    np.testing.assert_allclose(out[:2], signal[:2], atol=1e-12)


def test_lead_i_from_augmented_leads():
    rng = np.random.default_rng(2)
    signal, names = _twelve(rng)
    keep = [k for k, n in enumerate(names) if n not in {"I", "III"}]
    out = select_store_leads(signal[keep], [names[k] for k in keep])
    np.testing.assert_allclose(out[0], signal[0], atol=1e-12)


def test_missing_precordial_raises():
    rng = np.random.default_rng(3)
    signal, names = _twelve(rng)
    with pytest.raises(MissingLeadsError, match="V4"):
        select_store_leads(signal[:9], names[:9])


def test_units():
    assert unit_scale_to_mv("mV") == 1.0
    assert unit_scale_to_mv("uV") == 1e-3
    assert unit_scale_to_mv("V") == 1e3
    with pytest.raises(ValueError, match="unknown signal unit"):
        unit_scale_to_mv("bpm")
    assert len(STORE_LEADS) == 8
