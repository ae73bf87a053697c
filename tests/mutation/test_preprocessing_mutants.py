"""Tests that kill mutmut's surviving mutants of cape.preprocessing (docs/testing.md).

Mutant names are mutmut 3.8.1's (``scripts/mutation.sh preprocessing``); each docstring names the
mutants the test kills and the bug they stand for. Names are shortened: ``post_init_N`` is
``xǁPreprocessingConfigǁ__post_init____mutmut_N``, ``plan_N`` is ``x_plan_filters__mutmut_N``,
``block_N`` is ``x__process_block__mutmut_N``, ``preprocess_N`` is ``x_preprocess__mutmut_N``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from scipy import signal as sps

from cape.preprocessing import (
    FilterPlan,
    PreprocessingConfig,
    PreprocessingSettingError,
    design_filter,
    design_resampler,
    plan_filters,
    preprocess,
)

NYQUIST_NOTE_100HZ = (
    "source Nyquist 50 Hz is below the 100 Hz low-pass: the band ends at 50 Hz "
    "(resampler's anti-imaging filter)"
)


def record(leads: int, samples: int, seed: int = 0) -> np.ndarray:
    """A ``(1, leads, samples)`` float64 batch: an offset, a slow and a fast sine, and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / samples
    x = 0.8 * np.sin(2 * np.pi * 7 * t) + 0.2 * np.sin(2 * np.pi * 61 * t) + 1.5
    return (x + 0.05 * rng.standard_normal((1, leads, samples))).astype(np.float64)


def reference_sos(order: int = 2, quality: float = 30.0, mains: float | None = 50.0):
    """Band-pass 0.5-100 Hz then notch, at 400 Hz, straight from SciPy (float64)."""
    sos = sps.butter(order, [0.5, 100.0], btype="band", fs=400.0, output="sos")
    if mains is not None:
        b, a = sps.iirnotch(mains, quality, fs=400.0)
        sos = np.vstack([sos, sps.tf2sos(b, a)])
    return sos


def float32_chain(x, up: int, down: int, sos: np.ndarray, pad: int) -> np.ndarray:
    """The documented chain, step by step: float32 after removing each lead's mean, SciPy's
    default Kaiser FIR (10 taps per side per max(up, down), beta 5) for resampling."""
    block = np.subtract(x, x.mean(axis=-1, keepdims=True), dtype=np.float32)
    if up != down:
        fir = sps.firwin(2 * 10 * max(up, down) + 1, 1.0 / max(up, down), window=("kaiser", 5.0))
        block = sps.resample_poly(
            block, up, down, axis=-1, window=fir.astype(np.float32), padtype="line"
        )
    return sps.sosfiltfilt(sos.astype(np.float32), block, axis=-1, padlen=pad)


def re_shape(shape: tuple[int, ...]) -> str:
    """A shape tuple as a regular expression."""
    return str(shape).replace("(", r"\(").replace(")", r"\)")


# ---- PreprocessingConfig validation ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("target_rate_hz", 0.0, "0.0"),
        ("highpass_hz", 0, "0"),
        ("lowpass_hz", math.nan, "nan"),
        ("notch_quality", math.inf, "inf"),
        ("notch_quality", "30", "'30'"),
        ("notch_quality", -1.0, "-1.0"),
    ],
)
def test_positive_settings_reject_zero_infinite_and_non_numbers(name, value, shown) -> None:
    """Kills post_init_20 (``and value > 0`` -> ``or``: an infinite Q accepted), post_init_21
    (``isinstance(...) and`` -> ``or``: a string reaches ``math.isfinite`` and raises TypeError
    instead of the setting error), post_init_23 (``> 0`` -> ``>= 0``: a zero rate or edge
    accepted) and post_init_25-30 (the message without the setting's name or reason)."""
    message = rf"^preprocessing setting {name}={shown}: must be a positive number$"
    with pytest.raises(PreprocessingSettingError, match=message):
        PreprocessingConfig(**{name: value})


def test_lowpass_must_be_strictly_above_highpass() -> None:
    """Kills post_init_31 (``<=`` -> ``<``: an empty band, low-pass == high-pass, accepted)."""
    message = r"^preprocessing setting lowpass_hz=50\.0: must be above highpass_hz=50\.0$"
    with pytest.raises(PreprocessingSettingError, match=message):
        PreprocessingConfig(highpass_hz=50.0, lowpass_hz=50.0)
    assert PreprocessingConfig(highpass_hz=49.0, lowpass_hz=50.0).lowpass_hz == 50.0


def test_lowpass_nyquist_bound_is_98_percent_of_half_the_target_rate() -> None:
    """Kills post_init_38 (``>=`` -> ``>``: a low-pass exactly at the 196 Hz bound accepted),
    post_init_41 (``/ 2`` -> ``/ 3``: legal edges up to 196 Hz refused above 130.7 Hz) and
    post_init_43 (message dropped). 0.98 * 400 / 2 is exactly 196.0 in float64."""
    assert 0.98 * 400.0 / 2 == 196.0
    message = (
        r"^preprocessing setting lowpass_hz=196\.0: must be below Nyquist of "
        r"target_rate_hz=400\.0$"
    )
    with pytest.raises(PreprocessingSettingError, match=message):
        PreprocessingConfig(lowpass_hz=196.0)
    for legal in (150.0, 195.9):
        assert PreprocessingConfig(lowpass_hz=legal).lowpass_hz == legal


def test_filter_order_range_is_1_to_8_inclusive() -> None:
    """Kills post_init_50/51 (order 1 refused), post_init_52 (order 8 refused), post_init_53
    (order 9 accepted) and post_init_55/60/61 (message dropped or changed)."""
    for order in (1, 8):
        assert PreprocessingConfig(filter_order=order).filter_order == order
    for order, shown in ((0, "0"), (9, "9"), (2.0, "2.0")):
        message = rf"^preprocessing setting filter_order={shown}: must be an integer from 1 to 8$"
        with pytest.raises(PreprocessingSettingError, match=message):
            PreprocessingConfig(filter_order=order)


def test_filter_pad_seconds_accepts_zero_and_rejects_negative_or_infinite() -> None:
    """Kills post_init_63 (``and`` -> ``or``: a negative or infinite pad accepted),
    post_init_64/65 (``>= 0`` -> ``> 0`` / ``>= 1``: no pad, or a pad under 1 s, refused) and
    post_init_67-74 (message without the setting's name or reason)."""
    for pad in (0.0, 0.5):
        assert PreprocessingConfig(filter_pad_seconds=pad).pad_samples == round(400 * pad)
    for pad, shown in ((-0.5, "-0.5"), (math.inf, "inf"), (math.nan, "nan")):
        message = (
            rf"^preprocessing setting filter_pad_seconds={shown}: must be a non-negative number$"
        )
        with pytest.raises(PreprocessingSettingError, match=message):
            PreprocessingConfig(filter_pad_seconds=pad)


def test_min_seconds_lies_in_open_zero_to_slot_closed() -> None:
    """Kills post_init_76 (``0 <`` -> ``1 <``: a minimum under 1 s refused), post_init_77
    (``0 <`` -> ``0 <=``: a zero minimum accepted), post_init_78 (``<= slot`` -> ``< slot``: a
    minimum equal to the slot refused) and post_init_79-84 (message changed)."""
    assert PreprocessingConfig(min_seconds=0.5).min_seconds == 0.5
    assert PreprocessingConfig(min_seconds=10.0, slot_seconds=10.0).min_seconds == 10.0
    for value, shown in ((0.0, "0.0"), (10.5, "10.5")):
        message = (
            rf"^preprocessing setting min_seconds={shown}: must be in \(0, slot_seconds=10\.0\]$"
        )
        with pytest.raises(PreprocessingSettingError, match=message):
            PreprocessingConfig(min_seconds=value)


# ---- rate and mains checks ---------------------------------------------------------------


@pytest.mark.parametrize(("rate", "shown"), [("abc", "'abc'"), (None, "None"), (-5.0, "-5.0")])
def test_bad_rate_is_a_value_error_with_its_value(rate, shown) -> None:
    """Kills x__check_rate__mutmut_3 (a rate that ``float()`` refuses becomes ``None``, and
    ``math.isfinite(None)`` raises a TypeError instead of the documented ValueError)."""
    message = rf"^sampling_rate_hz must be a positive number, got {shown}$"
    with pytest.raises(ValueError, match=message):
        plan_filters(rate, 50)


def test_rates_below_1hz_are_positive_rates() -> None:
    """Kills x__check_rate__mutmut_8 (``rate > 0`` -> ``rate > 1``: 0.5 Hz refused)."""
    plan = plan_filters(0.5, None)
    assert (plan.up, plan.down, plan.effective_lowpass_hz) == (800, 1, 0.25)


# ---- plan_filters ------------------------------------------------------------------------


def test_plan_to_dict_is_exact_for_a_100hz_source_with_60hz_mains() -> None:
    """Kills x__FilterPlan_to_dict__mutmut_1-6 (no test called ``to_dict``: the dict replaced,
    ``notes`` renamed, set to None or not a list), plan_64 (``source_rate_hz=None``) and plan_84
    (the sharp FIR's Kaiser beta 8 dropped, left at the default 5)."""
    plan = plan_filters(100.0, 60)
    assert isinstance(plan, FilterPlan)
    assert plan.to_dict() == {
        "source_rate_hz": 100.0,
        "output_rate_hz": 400.0,
        "up": 4,
        "down": 1,
        "highpass_hz": 0.5,
        "lowpass_hz": 100.0,
        "effective_lowpass_hz": 50.0,
        "notch_hz": 60.0,
        "resampler_half_taps": 40,
        "resampler_kaiser_beta": 8.0,
        "notes": [
            NYQUIST_NOTE_100HZ,
            "mains 60 Hz is above the source Nyquist 50 Hz: hum in the source, if any, is "
            "aliased to 40 Hz and cannot be notched",
        ],
    }
    assert type(plan.to_dict()["notes"]) is list


def test_plan_for_500hz_keeps_the_configured_lowpass() -> None:
    """Kills plan_26 (``effective_lowpass_hz`` None when the source band covers the low-pass)."""
    assert plan_filters(500.0, 50).to_dict() == {
        "source_rate_hz": 500.0,
        "output_rate_hz": 400.0,
        "up": 4,
        "down": 5,
        "highpass_hz": 0.5,
        "lowpass_hz": 100.0,
        "effective_lowpass_hz": 100.0,
        "notch_hz": 50.0,
        "resampler_half_taps": 10,
        "resampler_kaiser_beta": 5.0,
        "notes": [],
    }


def test_source_nyquist_equal_to_lowpass_is_not_a_low_rate_source() -> None:
    """Kills plan_28 (``<`` -> ``<=``: a 200 Hz source, whose Nyquist frequency is exactly the
    100 Hz low-pass, given the sharp FIR and a note)."""
    plan = plan_filters(200.0, 50)
    assert (plan.effective_lowpass_hz, plan.resampler_half_taps) == (100.0, 10)
    assert (plan.resampler_kaiser_beta, plan.notes) == (5.0, ())


def test_rate_without_a_small_ratio_is_noted_exactly() -> None:
    """Kills plan_21 (tolerance ``1e-6 * target`` -> ``1.000001 * target``: never noted) and
    plan_22 (the note replaced by None). 997.3 Hz resamples by 148/369 to 400.00108 Hz."""
    plan = plan_filters(997.3, None)
    assert (plan.up, plan.down) == (148, 369)
    assert plan.notes == (
        "997.3 Hz has no ratio to 400 Hz with denominator <= 1000: resampled by 148/369 "
        "to 400.001084 Hz",
    )


def test_output_rate_within_relative_1e_minus_6_is_not_noted() -> None:
    """Kills plan_20 (``1e-6 * target`` -> ``1e-6 / target``: an output rate 1e-7 Hz off 400
    Hz noted) and plan_19 (``>`` -> ``>=``: an error of exactly 1e-6 of the target noted; a
    1 MHz target and a 999999 Hz source resample 1/1 with an error of exactly 1.0 Hz)."""
    plan = plan_filters(400.0000001, 50)
    assert (plan.up, plan.down, plan.output_rate_hz, plan.notes) == (1, 1, 400.0000001, ())
    assert 1e-6 * 1e6 == 1.0
    config = PreprocessingConfig(target_rate_hz=1e6)
    plan = plan_filters(999999, None, config)
    assert (plan.up, plan.down, plan.output_rate_hz, plan.notes) == (1, 1, 999999.0, ())


@pytest.mark.parametrize(
    ("rate", "nyquist"), [(100.0, "50"), (99.5, "49.75"), (102.04081632653062, "51.0204")]
)
def test_mains_at_the_source_nyquist_is_noted_as_removable(rate, nyquist) -> None:
    """Kills plan_48 (``alias - mains`` -> ``alias + mains``: always "aliased, cannot be
    notched"), plan_50 (tolerance ``0.02 * mains`` -> ``0.02 / mains``: 49.75 Hz, half a hertz
    off, no longer "at" Nyquist), plan_53 (note replaced by None) and plan_39 (``>=`` -> ``>``:
    at 102.0408... Hz, 0.98 times the Nyquist frequency is exactly 50.0, the note is lost)."""
    assert 0.98 * (102.04081632653062 / 2) == 50.0
    notes = plan_filters(rate, 50).notes
    assert len(notes) == 2
    assert notes[1] == (
        f"mains 50 Hz is at the source Nyquist {nyquist} Hz: hum shows as the alternating-sign "
        "component, which the notch at 400 Hz removes"
    )


def test_each_note_is_logged_once_at_debug_with_the_rate(caplog) -> None:
    """Kills plan_55-63 (the debug line's format, rate or note replaced, dropped or
    re-cased): ingest relies on these lines to explain a cohort's edge cases."""
    caplog.set_level(logging.DEBUG, logger="cape.preprocessing")
    plan = plan_filters(100.0, 60)
    got = [r.getMessage() for r in caplog.records if r.name == "cape.preprocessing"]
    assert got == [f"preprocessing 100 Hz: {note}" for note in plan.notes]
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


# ---- filter and resampler design ---------------------------------------------------------


def test_design_filter_uses_the_given_config() -> None:
    """Kills x_design_filter__mutmut_2 (``config or default`` -> ``config and default``: a
    caller's filter order and notch Q replaced by the defaults)."""
    config = PreprocessingConfig(filter_order=4, notch_quality=10.0)
    sos = design_filter(plan_filters(500.0, 60, config), config)
    np.testing.assert_array_equal(sos, reference_sos(4, 10.0, 60.0))
    assert sos.shape == (5, 6) and sos.dtype == np.float64


def test_design_resampler_matches_scipy_default_and_sharp_fir() -> None:
    """Kills x_design_resampler__mutmut_8 (``2 * half * max + 1`` taps -> ``- 1``: the FIR two
    taps short, off SciPy's design that the docstring promises)."""
    assert design_resampler(plan_filters(400.0, 50)) is None
    fir = design_resampler(plan_filters(500.0, 50))
    assert fir.shape == (101,)
    np.testing.assert_array_equal(fir, sps.firwin(101, 0.2, window=("kaiser", 5.0)))
    sharp = design_resampler(plan_filters(100.0, 50))
    assert sharp.shape == (321,)
    np.testing.assert_array_equal(sharp, sps.firwin(321, 0.25, window=("kaiser", 8.0)))


# ---- preprocess and its blocks -----------------------------------------------------------


def test_non_finite_message_points_to_qc() -> None:
    """Kills block_12/13 (message changed)."""
    x = record(2, 1000)
    x[0, 1, 3] = np.inf
    message = r"^signals hold non-finite samples; run QC \(cape\.qc\) first$"
    with pytest.raises(ValueError, match=message):
        preprocess(x, 400.0, 50)


def test_too_short_boundary_is_the_pad_length() -> None:
    """Kills block_44 (``n_out <= pad`` -> ``<``: a signal exactly as long as the pad reaches
    SciPy, which fails with its own message). 401 samples are enough."""
    message = (
        r"^a signal of 400 samples at 400 Hz is too short to filter: the filters need more "
        r"than 400 samples \(filter_pad_seconds\)$"
    )
    with pytest.raises(ValueError, match=message):
        preprocess(record(2, 400), 400.0, 50)
    assert preprocess(record(2, 401), 400.0, 50).signals.shape == (1, 2, 401)


@pytest.mark.parametrize("rate", [500.0, 400.0])
def test_output_is_the_float32_chain_exactly(rate) -> None:
    """Kills block_18/21 (mean removal without ``dtype=float32``: the chain runs in float64),
        block_38 (resampler window left float64), block_55 (``sos`` left float64), and
        preprocess_29 (``issubdtype(dtype, None)``: float32 input cast to a float64 copy first,
    which changes the float32 mean's rounding). The
        module documents float32 computation after removing each lead's mean; the same SciPy
        calls in the same dtypes give bit-identical results."""
    n = round(3 * rate)
    x = record(3, n, seed=1)
    up, down = (4, 5) if rate == 500.0 else (1, 1)
    expected = float32_chain(x, up, down, reference_sos(), 400)
    got = preprocess(x, rate, 50).signals
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    # float32 input (with a 1 V electrode offset) is not cast up: its mean is float32 too.
    x32 = (x + 1000.0).astype(np.float32)
    np.testing.assert_array_equal(
        preprocess(x32, rate, 50).signals, float32_chain(x32, up, down, reference_sos(), 400)
    )


def test_preprocess_passes_its_config_to_the_filter_design() -> None:
    """Kills preprocess_59/61 (``design_filter(plan, None)`` / config dropped: a 4th-order
    band-pass and Q = 10 silently replaced by the defaults)."""
    config = PreprocessingConfig(filter_order=4, notch_quality=10.0, filter_pad_seconds=0.5)
    x = record(2, 1500, seed=2)
    got = preprocess(x, 500.0, 60, config).signals
    expected = float32_chain(x, 4, 5, reference_sos(4, 10.0, 60.0), 200)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shape", [(1, 8, 0), (8, 0), (1, 2, 3, 4)])
def test_empty_or_wrongly_ranked_signals_are_refused_by_the_shape_check(shape) -> None:
    """Kills preprocess_16/17 (``shape[-1]`` -> ``shape[+1]`` / ``shape[-2]``: a 3-D batch of
    zero samples slips past to a misleading "non-finite" error) and preprocess_19 (``== 0`` ->
    ``== 1``)."""
    message = (
        r"^signals must be \(batch, leads, samples\) or \(leads, samples\), got shape "
        + re_shape(shape)
        + "$"
    )
    with pytest.raises(ValueError, match=message):
        preprocess(np.zeros(shape), 400.0, 50)


def test_one_sample_record_is_accepted() -> None:
    """Kills preprocess_19 (``shape[-1] == 0`` -> ``== 1``: a 1-sample signal refused as a bad
    shape) and preprocess_53/54 (``valid_length < 1`` -> ``<= 1`` / ``< 2``: a 1-sample valid
    length refused). With no edge pad a single sample is filterable: it is its own mean, so
    the output is 0."""
    config = PreprocessingConfig(filter_pad_seconds=0.0)
    one = preprocess(np.full((1, 2, 1), 3.0), 400.0, 50, config)
    np.testing.assert_array_equal(one.signals, np.zeros((1, 2, 1), dtype=np.float32))
    out = preprocess(np.full((1, 2, 10), 3.0), 400.0, 50, config, valid_length=1)
    assert out.valid_lengths.tolist() == [1]
    np.testing.assert_array_equal(out.signals, np.zeros((1, 2, 10), dtype=np.float32))
    with pytest.raises(ValueError, match=r"^valid_length must lie in \[1, 10\], got \[0\]$"):
        preprocess(np.ones((1, 2, 10)), 400.0, 50, config, valid_length=0)


def test_integer_and_object_inputs_are_converted_to_float() -> None:
    """Kills preprocess_32 (the cast's result replaced by None: integer ADC counts crash),
    preprocess_27 (``not`` dropped) and preprocess_28 (``issubdtype(None, ...)``: never cast),
    which leave an object array (as pandas hands out) uncast, so the float32 subtraction
    refuses it."""
    counts = np.round(record(2, 1000, seed=3) * 200).astype(np.int16)
    expected = preprocess(counts.astype(np.float64), 400.0, 50).signals
    np.testing.assert_array_equal(preprocess(counts, 400.0, 50).signals, expected)
    np.testing.assert_array_equal(preprocess(counts.astype(object), 400.0, 50).signals, expected)


def test_uniform_short_valid_length_is_filtered_on_its_valid_part() -> None:
    """Kills preprocess_82 (``and`` -> ``or``) and preprocess_86 (``== n`` -> ``!= n``): with
    every record one shorter valid length the whole padded array went through the filters,
    so the zero padding rang into the signal and the tail was not zero. Also kills
    preprocess_100/102 (the per-length output array float64 instead of float32) and
    preprocess_130 (valid lengths float64 instead of int64)."""
    x = record(2, 2000, seed=4).repeat(2, axis=0)
    padded = x.copy()
    padded[:, :, 1500:] = 0.0
    out = preprocess(padded, 500.0, 50, valid_length=1500)
    assert out.signals.dtype == np.float32
    assert out.valid_lengths.dtype == np.int64
    assert out.valid_lengths.tolist() == [1200, 1200]
    trimmed = preprocess(x[:, :, :1500], 500.0, 50).signals
    np.testing.assert_array_equal(out.signals[:, :, :1200], trimmed)
    assert not out.signals[:, :, 1200:].any()


def test_float_valid_lengths_are_read_as_integers() -> None:
    """Kills preprocess_49/51 (``np.asarray(valid_length)`` without ``dtype=int64``: valid
    lengths read from a float column became float slice bounds, a TypeError)."""
    x = record(2, 2000, seed=5).repeat(2, axis=0)
    got = preprocess(x, 500.0, 50, valid_length=np.array([2000.0, 1500.0]))
    want = preprocess(x, 500.0, 50, valid_length=np.array([2000, 1500]))
    assert got.valid_lengths.tolist() == [1600, 1200]
    np.testing.assert_array_equal(got.signals, want.signals)
