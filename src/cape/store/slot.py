"""The store's fixed slot: fit 400 Hz records into 10 s and convert to int16 microvolts."""

from __future__ import annotations

import numpy as np

from cape.store.layout import INT16_LIMIT_MV

_INT16_LIMIT = round(INT16_LIMIT_MV * 1000)  # 32,767 µV


def fit_to_slot(
    signals_400hz: np.ndarray, valid_lengths: np.ndarray, slot_samples: int = 4000
) -> tuple[np.ndarray, np.ndarray]:
    """Put each record into the store's fixed slot: central crop or zero padding at the end.

    Records longer than the slot keep their *central* ``slot_samples``: the
    first and last seconds of a recording carry electrode settling and the
    filters' edge transients, and the middle is the cleanest part. Shorter
    records are copied to the start of the slot and zero-padded at the end.

    Args:
        signals_400hz: ``(batch, leads, n)`` float mV, valid samples first.
        valid_lengths: ``(batch,)`` valid samples per record (``<= n``).
        slot_samples: slot length (4000 = 10 s at 400 Hz).

    Returns:
        ``(batch, leads, slot_samples)`` float32 and the ``(batch,)`` int64
        valid lengths inside the slot (``min(valid, slot_samples)``).

    Raises:
        ValueError: bad shape or valid lengths out of ``[0, n]``.
    """
    array = np.asarray(signals_400hz)
    if array.ndim != 3:
        raise ValueError(f"signals_400hz must be (batch, leads, samples), got shape {array.shape}")
    lengths = np.asarray(valid_lengths, dtype=np.int64).reshape(-1)
    if lengths.shape[0] != array.shape[0]:
        raise ValueError(f"{lengths.shape[0]} valid lengths for a batch of {array.shape[0]}")
    if (lengths < 0).any() or (lengths > array.shape[-1]).any():
        raise ValueError(f"valid_lengths must lie in [0, {array.shape[-1]}]")
    out = np.zeros((array.shape[0], array.shape[1], slot_samples), dtype=np.float32)
    kept = np.minimum(lengths, slot_samples)
    starts = np.maximum(lengths - slot_samples, 0) // 2
    for i, (start, length) in enumerate(zip(starts, kept, strict=True)):
        out[i, :, :length] = array[i, :, start : start + length]
    return out, kept


def would_clip_int16(signals_mv: np.ndarray) -> np.ndarray:
    """Which records hold a sample outside the int16 microvolt range (+-32.767 mV).

    Args:
        signals_mv: ``(batch, ...)`` float mV (a 2-D ``(leads, n)`` array is one record).

    Returns:
        bool ``(batch,)``; ``True`` = converting would saturate (quarantine it).
    """
    # Compare after rounding, as the conversion does: 32.7674 mV still rounds to 32767 µV.
    return _clips(np.rint(np.asarray(signals_mv) * 1000.0))


def _clips(rounded_microvolts: np.ndarray) -> np.ndarray:
    array = rounded_microvolts
    batch = array.reshape(1, -1) if array.ndim <= 2 else array.reshape(array.shape[0], -1)
    return np.asarray((np.abs(batch) > _INT16_LIMIT).any(axis=1))


def to_int16_microvolts(signals_mv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert mV to int16 µV (round to nearest), flagging records that would clip.

    Out-of-range samples are saturated at +-32767 so the array is defined, but
    the flag lets ingest quarantine those records (reason ``saturated``)
    instead of storing clipped signals silently.

    Args:
        signals_mv: ``(batch, leads, n)`` (or ``(leads, n)``) float mV.

    Returns:
        int16 array of the same shape, and bool ``(batch,)`` ``would_clip``.

    Raises:
        ValueError: non-finite samples (they have no integer value).
    """
    array = np.asarray(signals_mv)
    if not np.isfinite(array).all():
        raise ValueError("cannot convert non-finite samples to int16 microvolts")
    rounded = np.rint(array * 1000.0)
    clip = _clips(rounded)
    return np.clip(rounded, -_INT16_LIMIT, _INT16_LIMIT).astype(np.int16), clip
