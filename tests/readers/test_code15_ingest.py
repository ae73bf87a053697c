"""CODE-15% through ingest into the store: the valid window survives end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cape.ingest import ingest
from cape.store import CohortStore

from .conftest import Code15Tree

LEAD_II_STORE = 1  # store leads: I, II, V1..V6
LEAD_II_CODE15 = 1  # CODE-15% columns: DI, DII, DIII, AVR, AVL, AVF, V1..V6


@pytest.mark.parametrize(("exam_id", "n_valid"), [(1002, 2800), (1001, 4000)])
def test_stored_signal_is_the_valid_window_not_the_padding(
    code15_tree: Code15Tree, tmp_path: Path, exam_id: int, n_valid: int
) -> None:
    """A 7 s record (648 zero samples each side in its 4096 row) and a 10 s one
    (48 each side) are stored from their first real sample.

    Mutation caught: ingest (or the reader, or the slot fitting) ignoring the
    record's ``valid_start`` -- ``signal[:, :valid_length]`` instead of
    ``signal[:, valid_start : valid_start + valid_length]`` -- stores the 7 s
    record as 648 zeros plus a truncated signal (the 10 s one shifted by 48
    samples). The fixture's beats are 12 ms Gaussian spikes once a second, so a
    shift of 48 or 648 samples (0.12 s, 1.62 s) puts stored and source spikes in
    different places: correlation near 0 instead of near 1 (the 0.5-100 Hz
    band-pass keeps the spikes; the source is already at 400 Hz, so nothing is
    resampled). Interior samples only, away from the filters' edge transients.
    """
    ingest("code15", code15_tree.root, "code15", tmp_path / "store", 60.0, progress=False)
    store = CohortStore.open(tmp_path / "store")
    index = int(np.flatnonzero(store.manifest["record_id"].astype(str) == str(exam_id))[0])
    assert int(store.valid_lengths[index]) == n_valid
    stored = store.read(index)[LEAD_II_STORE, :n_valid].astype(np.float64)

    start, length = code15_tree.windows[exam_id]
    assert length == n_valid
    source = code15_tree.tracings[exam_id][start : start + length, LEAD_II_CODE15]
    interior = slice(200, n_valid - 200)
    correlation = np.corrcoef(stored[interior], source[interior])[0, 1]
    assert correlation > 0.95, correlation
    # The first second holds a beat (the source's first spike is at 0.3 s), not padding.
    first_second = stored[:400]
    assert np.ptp(first_second) > 0.5 * np.ptp(stored[interior])
