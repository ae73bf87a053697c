"""Tests that kill mutmut's surviving mutants of cape.augment (docs/testing.md).

Mutant names are mutmut 3.8.1's (``scripts/mutation.sh augment``); each docstring names the
mutants the test kills and the bug they stand for.
"""

from __future__ import annotations

import numpy as np
import pytest

from cape.augment import ViewAugmenter, random_crop, zero_mask


def ramp(leads: int, samples: int, dtype: type = np.float64) -> np.ndarray:
    return (np.arange(leads * samples, dtype=dtype).reshape(leads, samples) + 1.0).astype(dtype)


def test_one_sample_crop_and_one_valid_sample_are_accepted() -> None:
    """Kills x_random_crop__mutmut_1/2 (``crop_samples < 1`` -> ``<= 1`` / ``< 2``) and
    x_random_crop__mutmut_5/6 (``1 <= valid_length`` -> ``2 <=`` / ``1 <``): the smallest legal
    crop and the smallest legal record refused."""
    signal = ramp(2, 6)
    rng = np.random.default_rng(0)
    one = random_crop(signal, 6, 1, rng)
    assert one.shape == (2, 1)
    assert one[0, 0] in signal[0]
    short = random_crop(signal, 1, 4, rng)
    np.testing.assert_array_equal(short, [[1, 0, 0, 0], [7, 0, 0, 0]])


def test_crop_errors_name_the_bad_value() -> None:
    """Kills x_random_crop__mutmut_3 (message dropped) and x_random_crop__mutmut_12 (the
    message quoting the lead count, shape[-2], as the slot length)."""
    signal = ramp(3, 8)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"^crop_samples must be positive, got 0$"):
        random_crop(signal, 8, 0, rng)
    with pytest.raises(ValueError, match=r"^valid_length 9 outside 1\.\.8$"):
        random_crop(signal, 9, 4, rng)


@pytest.mark.parametrize("valid", [8, 3])
def test_views_are_float32_whatever_the_stored_dtype(valid: int) -> None:
    """Kills x_random_crop__mutmut_16/18 (zero-padded view left float64) and
    x_random_crop__mutmut_32/34 (cropped view left float64): a float64 store would double the
    loader's memory and change the encoder's input dtype."""
    view = random_crop(ramp(2, 8), valid, 4, np.random.default_rng(1))
    assert view.dtype == np.float32


def test_zero_mask_errors_are_raised_by_the_check_with_their_values() -> None:
    """Kills x_zero_mask__mutmut_2 (``or`` -> ``and``: a negative span count let through to
    a numpy error) and x_zero_mask__mutmut_8 (message dropped)."""
    view = np.ones((2, 10))
    rng = np.random.default_rng(0)
    message = r"^need n_spans >= 0 and 0 <= min_samples <= max_samples, got -1, 0, 3$"
    with pytest.raises(ValueError, match=message):
        zero_mask(view, -1, 0, 3, False, rng)


def test_zero_mask_accepts_zero_length_spans_and_equal_bounds() -> None:
    """Kills x_zero_mask__mutmut_5/6 (``min_samples < 0`` -> ``<= 0`` / ``< 1``: a zero minimum
    refused) and x_zero_mask__mutmut_7 (``>`` -> ``>=``: min == max refused)."""
    view = np.ones((2, 10))
    zero_mask(view, 2, 0, 0, False, np.random.default_rng(0))
    assert view.sum() == 20  # zero-length spans mask nothing
    zero_mask(view, 1, 3, 3, False, np.random.default_rng(0))
    assert (view == 0).sum() == 6


def test_span_lengths_are_exactly_the_bounds_when_equal() -> None:
    """Kills x_zero_mask__mutmut_33 (``longest + 1`` -> ``longest - 1``: lengths never reach
    max, and min == max raises) and x_zero_mask__mutmut_34 (``+ 2``: a span one sample longer
    than max)."""
    for seed in range(200):
        view = np.ones((1, 50))
        zero_mask(view, 1, 5, 5, False, np.random.default_rng(seed))
        assert (view == 0).sum() == 5, seed


def test_span_starts_are_uniform_over_every_position_that_fits() -> None:
    """Kills x_zero_mask__mutmut_37 (``*`` -> ``/``: every span at the start), _39 (``+ 1`` ->
    ``- 1``: the last two positions never masked) and _41 (``+ 2``: a span hanging over the
    end, clipped short). A length-3 span in 10 samples starts at 0..7, each about 1/8 of the time
    (2000 draws: each count is Binomial(2000, 1/8), 250 +- 14.8 sd; [150, 350] is +-6.7 sd)."""
    counts = np.zeros(10, dtype=int)
    for seed in range(2000):
        view = np.ones((1, 10))
        zero_mask(view, 1, 3, 3, False, np.random.default_rng(seed))
        zeros = np.flatnonzero(view[0] == 0)
        assert len(zeros) == 3 and zeros[-1] - zeros[0] == 2, seed
        counts[zeros[0]] += 1
    assert counts[8:].sum() == 0
    assert ((counts[:8] >= 150) & (counts[:8] <= 350)).all(), counts


def test_per_lead_spans_start_independently() -> None:
    """Kills x_zero_mask__mutmut_38 (``rng.random(None)``: one uniform shared by every lead and
    span, so equal-length spans all start at the same sample)."""
    view = np.ones((12, 400))
    zero_mask(view, 1, 20, 20, True, np.random.default_rng(3))
    starts = {int(np.flatnonzero(row == 0)[0]) for row in view}
    assert len(starts) > 1


def test_augmenter_setting_errors_say_what_is_needed() -> None:
    """Kills xǁViewAugmenterǁ__post_init____mutmut_6/14/15/16/19 (messages dropped or
    altered)."""
    with pytest.raises(ValueError) as info:
        ViewAugmenter(mask_probability=1.5)
    assert str(info.value) == "mask_probability must be in [0, 1], got 1.5"
    with pytest.raises(ValueError) as info:
        ViewAugmenter(mask_spans=-1)
    assert str(info.value) == "mask_spans >= 0 and 0 <= mask_min_samples <= mask_max_samples needed"
    with pytest.raises(ValueError) as info:
        ViewAugmenter(crop_samples=0)
    assert str(info.value) == "crop_samples must be positive, got 0"


def test_augmenter_accepts_its_boundary_settings() -> None:
    """Kills xǁViewAugmenterǁ__post_init____mutmut_11/12 (mask_min_samples 0 refused), _13
    (mask_min_samples == mask_max_samples refused) and _17 (crop_samples 1 refused)."""
    ViewAugmenter(mask_min_samples=0, mask_max_samples=10)
    ViewAugmenter(mask_min_samples=10, mask_max_samples=10)
    assert ViewAugmenter(crop_samples=1)(ramp(2, 5), 5, np.random.default_rng(0)).shape == (2, 1)


def test_augmenter_masks_per_lead_when_asked() -> None:
    """Kills xǁViewAugmenterǁ__call____mutmut_15 (mask_per_lead passed as None: per-lead masking
    silently becomes all-lead masking)."""
    augmenter = ViewAugmenter(
        crop_samples=300, mask_spans=1, mask_min_samples=30, mask_max_samples=30, mask_per_lead=True
    )
    view = augmenter(np.ones((12, 400), dtype=np.float32), 400, np.random.default_rng(5))
    masked_columns = {tuple(np.flatnonzero(row == 0)) for row in view}
    assert len(masked_columns) > 1  # leads masked at different places
    # Same draws as doing it by hand with per_lead=True.
    rng = np.random.default_rng(5)
    expected = random_crop(np.ones((12, 400), dtype=np.float32), 400, 300, rng)
    assert rng.random() < 1.0
    zero_mask(expected, 1, 30, 30, True, rng)
    np.testing.assert_array_equal(view, expected)
