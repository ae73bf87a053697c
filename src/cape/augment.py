"""Signal-preserving augmentations that turn a stored ECG into a training view.

CAPE's positives are two different ECGs of one patient, so augmentations
only need to be mild and must not change what the ECG says about the
patient: a random 7 s crop and zero masking. Both are plain NumPy on one
``(leads, samples)`` array and take an explicit ``numpy.random.Generator`` --
the pretraining data path derives it from (seed, epoch, sample position), so
a view is the same whatever worker makes it and after a resume.

Masking (defaults chosen here, see ``docs/pretraining.md``): ``n_spans`` spans
of ``min_samples``..``max_samples`` (uniform integer) are set to zero, at
uniform positions, either on all leads at once (a dropped-out recording
stretch) or independently per lead (a loose electrode). Spans may overlap.
Each view is masked with probability ``probability``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def random_crop(
    signal: np.ndarray, valid_length: int, crop_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """A random window of ``crop_samples`` inside the valid part of ``signal``.

    Args:
        signal: ``(leads, slot_samples)``; samples after ``valid_length`` are padding.
        valid_length: number of valid samples (``<= slot_samples``).
        crop_samples: window length.
        rng: source of the window's start.

    Returns:
        A new float32 ``(leads, crop_samples)`` array. A record of exactly
        ``crop_samples`` valid samples is returned whole; a shorter one is
        returned whole and zero-padded at the end.

    Raises:
        ValueError: ``valid_length`` outside ``1..slot_samples`` or a non-positive crop.
    """
    if crop_samples < 1:
        raise ValueError(f"crop_samples must be positive, got {crop_samples}")
    if not 1 <= valid_length <= signal.shape[-1]:
        raise ValueError(f"valid_length {valid_length} outside 1..{signal.shape[-1]}")
    if valid_length < crop_samples:
        out = np.zeros((signal.shape[0], crop_samples), dtype=np.float32)
        out[:, :valid_length] = signal[:, :valid_length]
        return out
    start = int(rng.integers(0, valid_length - crop_samples + 1))
    return np.array(signal[:, start : start + crop_samples], dtype=np.float32)


def zero_mask(
    view: np.ndarray,
    n_spans: int,
    min_samples: int,
    max_samples: int,
    per_lead: bool,
    rng: np.random.Generator,
) -> np.ndarray:
    """Set random spans of ``view`` to zero, in place.

    Args:
        view: ``(leads, samples)`` array, modified in place.
        n_spans: spans per view (or per lead when ``per_lead``); 0 disables masking.
        min_samples: shortest span.
        max_samples: longest span (clipped to the view length).
        per_lead: draw spans independently for each lead instead of for all leads.
        rng: source of span lengths and positions.

    Returns:
        ``view``.

    Raises:
        ValueError: negative counts or ``min_samples > max_samples``.
    """
    if n_spans < 0 or min_samples < 0 or min_samples > max_samples:
        raise ValueError(
            f"need n_spans >= 0 and 0 <= min_samples <= max_samples, got "
            f"{n_spans}, {min_samples}, {max_samples}"
        )
    if n_spans == 0:
        return view
    n_leads, n_samples = view.shape
    rows = n_leads if per_lead else 1
    longest = min(max_samples, n_samples)
    shortest = min(min_samples, longest)
    lengths = rng.integers(shortest, longest + 1, size=(rows, n_spans))
    starts = (rng.random((rows, n_spans)) * (n_samples - lengths + 1)).astype(np.int64)
    for row in range(rows):
        target = view[row] if per_lead else view
        for start, length in zip(starts[row], lengths[row], strict=True):
            target[..., start : start + length] = 0.0
    return view


@dataclass(frozen=True)
class ViewAugmenter:
    """Crop then mask: one stored ECG -> one training view.

    Attributes:
        crop_samples: view length (2800 = 7 s at 400 Hz).
        mask_spans: zero spans per view (per lead when ``mask_per_lead``).
        mask_min_samples: shortest span.
        mask_max_samples: longest span.
        mask_per_lead: spans drawn per lead rather than across all leads.
        mask_probability: probability that a view is masked at all.
    """

    crop_samples: int = 2800
    mask_spans: int = 2
    mask_min_samples: int = 40
    mask_max_samples: int = 200
    mask_per_lead: bool = False
    mask_probability: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.mask_probability <= 1.0:
            raise ValueError(f"mask_probability must be in [0, 1], got {self.mask_probability}")
        if self.mask_spans < 0 or not 0 <= self.mask_min_samples <= self.mask_max_samples:
            raise ValueError("mask_spans >= 0 and 0 <= mask_min_samples <= mask_max_samples needed")
        if self.crop_samples < 1:
            raise ValueError(f"crop_samples must be positive, got {self.crop_samples}")

    def __call__(
        self, signal: np.ndarray, valid_length: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Args: ``signal`` ``(leads, slot_samples)``; returns float32 ``(leads, crop_samples)``."""
        view = random_crop(signal, valid_length, self.crop_samples, rng)
        if rng.random() < self.mask_probability:
            zero_mask(
                view,
                self.mask_spans,
                self.mask_min_samples,
                self.mask_max_samples,
                self.mask_per_lead,
                rng,
            )
        return view
