"""Random crop and zero masking."""

from __future__ import annotations

import numpy as np
import pytest

from cape.augment import ViewAugmenter, random_crop, zero_mask


def ramp(leads: int = 8, samples: int = 4000) -> np.ndarray:
    """Each sample holds its own index (+ lead offset), so a crop reveals its start."""
    return (np.arange(samples)[None, :] + 10_000 * np.arange(leads)[:, None]).astype(np.float32)


def test_crop_is_a_contiguous_window_inside_the_valid_part() -> None:
    signal = ramp()
    rng = np.random.default_rng(0)
    starts = []
    for _ in range(400):
        view = random_crop(signal, 3000, 2800, rng)
        start = int(view[0, 0])
        starts.append(start)
        np.testing.assert_array_equal(view, signal[:, start : start + 2800])
    assert min(starts) == 0 and max(starts) == 200  # every start 0..200 is reachable
    assert len(set(starts)) > 150


def test_record_of_exactly_the_crop_length_is_returned_whole() -> None:
    signal = ramp()
    view = random_crop(signal, 2800, 2800, np.random.default_rng(1))
    np.testing.assert_array_equal(view, signal[:, :2800])


def test_short_record_is_zero_padded() -> None:
    signal = ramp()
    signal[:, 2000:] = 0
    view = random_crop(signal, 2000, 2800, np.random.default_rng(1))
    np.testing.assert_array_equal(view[:, :2000], signal[:, :2000])
    assert (view[:, 2000:] == 0).all()


def test_crop_rejects_bad_lengths() -> None:
    with pytest.raises(ValueError, match="valid_length"):
        random_crop(ramp(), 0, 100, np.random.default_rng(0))
    with pytest.raises(ValueError, match="valid_length"):
        random_crop(ramp(), 4001, 100, np.random.default_rng(0))


def zero_runs(row: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], row == 0, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(int)))
    return list(zip(edges[::2], edges[1::2] - edges[::2], strict=True))


def test_all_lead_mask_zeroes_the_same_spans_on_every_lead() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        view = np.ones((8, 2800), dtype=np.float32)
        zero_mask(view, 1, 40, 200, per_lead=False, rng=rng)
        runs = zero_runs(view[0])
        assert len(runs) == 1 and 40 <= runs[0][1] <= 200
        assert (view == view[0]).all()


def test_per_lead_mask_differs_between_leads_and_respects_bounds() -> None:
    rng = np.random.default_rng(3)
    view = np.ones((8, 2800), dtype=np.float32)
    zero_mask(view, 2, 40, 200, per_lead=True, rng=rng)
    patterns = {tuple(zero_runs(view[lead])) for lead in range(8)}
    assert len(patterns) > 1
    for lead in range(8):
        masked = int((view[lead] == 0).sum())
        assert 40 <= masked <= 400  # two spans, possibly overlapping


def test_masking_off_and_probability_zero_leave_the_crop() -> None:
    view = np.ones((8, 100), dtype=np.float32)
    assert (zero_mask(view, 0, 10, 20, False, np.random.default_rng(0)) == 1).all()
    augmenter = ViewAugmenter(crop_samples=2800, mask_probability=0.0)
    signal = ramp()
    out = augmenter(signal, 2800, np.random.default_rng(0))
    np.testing.assert_array_equal(out, signal[:, :2800])


def test_augmenter_is_deterministic_for_a_seed_and_masks_at_full_probability() -> None:
    augmenter = ViewAugmenter(crop_samples=2800, mask_spans=3)
    signal = ramp() + 1
    first = augmenter(signal, 4000, np.random.default_rng(7))
    again = augmenter(signal, 4000, np.random.default_rng(7))
    other = augmenter(signal, 4000, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert (first == 0).any()


def test_invalid_settings() -> None:
    with pytest.raises(ValueError):
        ViewAugmenter(mask_probability=1.5)
    with pytest.raises(ValueError):
        ViewAugmenter(mask_min_samples=300, mask_max_samples=200)
    with pytest.raises(ValueError):
        zero_mask(np.ones((1, 10)), 1, 5, 2, False, np.random.default_rng(0))
