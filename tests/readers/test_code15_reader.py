from __future__ import annotations

import json
import pickle

import h5py
import numpy as np
import pytest

from cape.errors import CapeError
from cape.readers.code15 import Code15Reader, detect_valid_window
from cape.record import Reason

from .conftest import read_all


def test_rows_are_matched_by_exam_id_not_csv_order(code15_tree):
    records, _ = read_all(Code15Reader(code15_tree.root, "code"))
    by_id = {r.record_id: r for r in records}
    assert sorted(by_id) == ["1001", "1002", "1003", "1004"]
    exams = code15_tree.exams.set_index("exam_id")
    for exam_id, record in by_id.items():
        expected = code15_tree.tracings[int(exam_id)]
        np.testing.assert_array_equal(record.signal, expected.T)  # float32, bit-exact
        assert record.signal.shape == (12, 4096)
        assert record.patient_id == str(exams.loc[int(exam_id), "patient_id"])
        assert record.metadata["age"] == float(exams.loc[int(exam_id), "age"])
        assert record.sampling_rate_hz == 400.0
        assert record.units == "mV"
        assert record.lead_names[:3] == ["DI", "DII", "DIII"] and len(record.lead_names) == 12
    assert by_id["1001"].patient_id == by_id["1002"].patient_id == "7"
    assert by_id["1001"].metadata["sex"] == "F" and by_id["1004"].metadata["sex"] == "M"
    assert by_id["1001"].source_file.endswith("exams_part0.hdf5")
    assert by_id["1004"].source_file.endswith("exams_part1.hdf5")


def test_labels_and_extra(code15_tree):
    by_id = {r.record_id: r for r in read_all(Code15Reader(code15_tree.root, "code"))[0]}
    assert by_id["1001"].metadata["diagnoses"] == ["RBBB"]
    assert by_id["1002"].metadata["diagnoses"] == ["ST", "AF"]
    assert by_id["1003"].metadata["diagnoses"] == ["1dAVb"]
    extra = json.loads(by_id["1003"].metadata["extra"])
    assert extra["nn_predicted_age"] == 60.0 and extra["death"] is True
    assert extra["timey"] == 1.2 and extra["normal_ecg"] is False
    assert "death" not in json.loads(by_id["1001"].metadata["extra"])  # empty in the csv


def test_valid_window_7s_and_10s(code15_tree):
    by_id = {r.record_id: r for r in read_all(Code15Reader(code15_tree.root, "code"))[0]}
    for exam_id, record in by_id.items():
        assert (record.valid_start, record.valid_length) == code15_tree.windows[int(exam_id)]
    assert by_id["1002"].valid_length == 2800 and by_id["1002"].valid_start == 648
    assert by_id["1001"].valid_length == 4000 and by_id["1001"].valid_start == 48
    # 1003 is a 10 s recording whose first and last 10 samples are exactly 0 on all leads.
    assert by_id["1003"].valid_length == 4000


def test_zero_rows_skipped_and_mismatches_rejected(code15_tree):
    records, rejections = read_all(Code15Reader(code15_tree.root, "code"))
    assert "0" not in {r.record_id for r in records}
    by_id = {r.record_id: r for r in rejections}
    assert sorted(by_id) == ["1005", "9999"]
    assert by_id["9999"].reason is Reason.BAD_METADATA  # in HDF5, not in exams.csv
    assert "exams_part0.hdf5" in by_id["9999"].detail
    assert by_id["1005"].reason is Reason.UNREADABLE  # in exams.csv, in no part
    assert by_id["1005"].patient_id == "10"
    assert by_id["1005"].source_file.endswith("exams_part1.hdf5")


def test_parts_option_limits_what_is_expected(code15_tree):
    records, rejections = read_all(Code15Reader(code15_tree.root, "code", parts=[0]))
    assert sorted(r.record_id for r in records) == ["1001", "1002"]
    # 1005 lives (per trace_file) in part 1, which was not asked for: not a rejection.
    assert [r.record_id for r in rejections] == ["9999"]


def test_tasks_are_row_ranges_with_stable_keys(code15_tree):
    reader = Code15Reader(code15_tree.root, "code", rows_per_task=2)
    keys = [t.key for t in reader.tasks()]
    assert keys == [
        "exams_part0-rows-000000-000001",
        "exams_part0-rows-000002-000003",
        "exams_part1-rows-000000-000001",
        "exams_part1-rows-000002-000002",
        "missing-00000",
    ]
    assert [t.n_items for t in reader.tasks()] == [2, 1, 2, 0, 1]  # exam_id 0 not counted
    # Readers travel to worker processes: the pickled reader must work on its own.
    clone = pickle.loads(pickle.dumps(reader))
    assert clone._exams is None
    assert sum(1 for task in clone.tasks() for _ in clone.read(task)) == 6


def test_unreadable_part_is_rejected_and_its_exams_reported(code15_tree):
    (code15_tree.root / "exams_part1.hdf5").write_bytes(b"not an hdf5 file")
    records, rejections = read_all(Code15Reader(code15_tree.root, "code"))
    assert sorted(r.record_id for r in records) == ["1001", "1002"]
    reasons = {(r.record_id, r.reason) for r in rejections}
    assert (None, Reason.UNREADABLE) in reasons  # the part itself
    assert {("1003", Reason.UNREADABLE), ("1004", Reason.UNREADABLE)} <= reasons


def test_all_zero_tracing_with_real_exam_id_is_rejected(code15_tree):
    with h5py.File(code15_tree.root / "exams_part0.hdf5", "r+") as handle:
        handle["tracings"][0] = 0.0  # exam 1001
    _, rejections = read_all(Code15Reader(code15_tree.root, "code"))
    flat = [r for r in rejections if r.record_id == "1001"]
    assert len(flat) == 1 and flat[0].reason is Reason.FLAT_LEAD


def test_constructor_fails_early(tmp_path, code15_tree):
    with pytest.raises(CapeError, match=r"exams\.csv"):
        Code15Reader(tmp_path, "code")
    with pytest.raises(CapeError, match=r"exams_part7\.hdf5"):
        Code15Reader(code15_tree.root, "code", parts=[7])
    for part in code15_tree.root.glob("*.hdf5"):
        part.unlink()
    with pytest.raises(CapeError, match="no exams_part"):
        Code15Reader(code15_tree.root, "code")


def test_detect_valid_window_against_naive_scan():
    rng = np.random.default_rng(3)
    tracing = np.zeros((4096, 12), dtype=np.float32)
    tracing[10:2010] = rng.standard_normal((2000, 12))  # not centred: no standard window holds it
    nonzero_rows = np.nonzero(np.abs(tracing).sum(axis=1))[0]
    naive = (int(nonzero_rows[0]), int(nonzero_rows[-1] - nonzero_rows[0] + 1))
    assert detect_valid_window(tracing) == naive == (10, 2000)
    # Inside the 7 s window but shorter (zeros at the recording's own edges): snapped to 7 s.
    inner = np.zeros((4096, 12))
    inner[1000:3000] = 1.0
    assert detect_valid_window(inner) == (648, 2800)
    assert detect_valid_window(np.zeros((4096, 12))) == (0, 0)
    full = rng.standard_normal((4096, 12))
    assert detect_valid_window(full) == (0, 4096)
    # A single lead non-zero at the edges of the 7 s window is enough.
    edge = np.zeros((4096, 12))
    edge[648, 5] = 1.0
    edge[648 + 2799, 11] = -1.0
    assert detect_valid_window(edge) == (648, 2800)


def test_damaged_chunk_rejects_only_its_row(code15_tree):
    part = code15_tree.root / "exams_part0.hdf5"
    with h5py.File(part, "r") as handle:
        stack, ids = handle["tracings"][:], handle["exam_id"][:]
    with h5py.File(part, "w") as handle:  # one gzip chunk per row, as a real file might be
        handle.create_dataset("tracings", data=stack, chunks=(1, 4096, 12), compression="gzip")
        handle.create_dataset("exam_id", data=ids)
    with h5py.File(part, "r") as handle:
        chunk = handle["tracings"].id.get_chunk_info(1)  # row 1 = exam 1002
    with part.open("r+b") as raw:
        raw.seek(chunk.byte_offset)
        raw.write(b"\xff" * chunk.size)
    records, rejections = read_all(Code15Reader(code15_tree.root, "code"))
    assert "1001" in {r.record_id for r in records}
    damaged = [r for r in rejections if r.record_id == "1002"]
    assert len(damaged) == 1 and damaged[0].reason is Reason.UNREADABLE
    assert "row 1 of exams_part0.hdf5" in damaged[0].detail
