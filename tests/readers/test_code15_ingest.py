"""CODE-15% through ingest into the store: the valid window survives end to end."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from cape.ingest import ingest
from cape.qc import QCConfig
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


def _scale_exams(root: Path, factors: dict[int, float]) -> None:
    with h5py.File(root / "exams_part0.hdf5", "r+") as handle:
        rows = list(handle["exam_id"][:])
        tracings = handle["tracings"]
        for exam_id, factor in factors.items():
            row = rows.index(exam_id)
            tracings[row] = tracings[row] * factor


def test_records_beyond_the_int16_range_are_quarantined_not_clipped(
    code15_tree: Code15Tree, tmp_path: Path
) -> None:
    """The store holds int16 µV (±32.767 mV). Exam 1001 scaled x50 has spikes of
    55 mV (lead II) to ~100 mV (chest leads): it must end in the quarantine, never
    in the store clipped. With the default QC the raw-signal checks (30 mV rail,
    6 mV QRS) catch it first; with those loosened, the int16 conversion after
    preprocessing must still catch it, as ``saturated``, while exam 1002 scaled
    x5 (spikes up to ~10 mV) is stored.

    Mutation caught: ingest ignoring ``to_int16_microvolts``' clip flag -- with the
    loosened QC the record would be stored silently clipped at 32.767 mV.
    """
    _scale_exams(code15_tree.root, {1001: 50.0, 1002: 5.0})
    # Default QC.
    ingest("code15", code15_tree.root, "code15", tmp_path / "default", 60.0, progress=False)
    store = CohortStore.open(tmp_path / "default")
    assert "1001" not in store.manifest["record_id"].astype(str).tolist()
    quarantine = store.quarantine()
    reasons = quarantine.loc[quarantine["record_id"].astype(str) == "1001", "reason"].tolist()
    assert reasons in (["saturated"], ["implausible_amplitude"]), reasons

    # Raw-signal amplitude checks off: only the int16 guard stands between 1001 and the store.
    loose = QCConfig(rail_mv=1e6, max_qrs_amplitude_mv=1e6)
    ingest("code15", code15_tree.root, "code15", tmp_path / "loose", 60.0, qc=loose, progress=False)
    store = CohortStore.open(tmp_path / "loose")
    stored = store.manifest["record_id"].astype(str).tolist()
    assert "1001" not in stored and "1002" in stored
    quarantine = store.quarantine()
    row = quarantine[quarantine["record_id"].astype(str) == "1001"]
    assert row["reason"].tolist() == ["saturated"], row.to_string()
    assert "int16" in row["detail"].iloc[0]
    # Nothing stored sits at the rail: what is kept was not clipped.
    for index in range(len(store.manifest)):
        assert np.abs(store.read(index)).max() < 32.0
