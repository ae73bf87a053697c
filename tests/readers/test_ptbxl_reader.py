from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from cape.errors import CapeError
from cape.readers.ptbxl import PTBXLReader, parse_scp_codes
from cape.record import Reason

from .conftest import PTBXL_LEADS, read_all

# Half a digital unit at PTB-XL's gain of 1000 per mV, plus float slack.
RESOLUTION_MV = 0.5e-3 + 1e-9


def _by_id(records):
    return {r.record_id: r for r in records}


def test_reads_500hz_records_with_ids_and_metadata(ptbxl_tree):
    records, rejections = read_all(PTBXLReader(ptbxl_tree.root, "ptbxl"))
    assert rejections == []
    by_id = _by_id(records)
    assert sorted(by_id) == ["1", "2", "3"]
    for ecg_id, expected in ptbxl_tree.signals_hr.items():
        record = by_id[str(ecg_id)]
        assert record.signal.shape == (12, 1000)
        np.testing.assert_allclose(record.signal, expected, atol=RESOLUTION_MV)
        assert record.sampling_rate_hz == 500.0
        assert record.lead_names == PTBXL_LEADS
        assert record.units == "mV"
        assert record.source_file.endswith(f"records500/00000/{ecg_id:05d}_hr.hea")
        assert record.cohort == "ptbxl"
    first = by_id["1"]
    assert first.patient_id == "15709"  # float 15709.0 in the csv
    assert by_id["3"].patient_id == "15709"
    assert first.metadata["sex"] == "F" and by_id["2"].metadata["sex"] == "M"
    assert first.metadata["age"] == 56.0 and first.metadata["age_topcoded"] is False
    assert first.metadata["device"] == "CS-12   E"
    assert first.metadata["site"] == "2"
    assert first.metadata["recording_date"] == "1984-11-09 09:17:34"
    assert first.metadata["strat_fold"] == 3
    assert json.loads(first.metadata["scp_codes"]) == {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}
    assert json.loads(by_id["2"].metadata["extra"])["height"] == 175.0


def test_100hz_option_reads_filename_lr(ptbxl_tree):
    records, _ = read_all(PTBXLReader(ptbxl_tree.root, "ptbxl", sampling_rate=100))
    for record in records:
        assert record.sampling_rate_hz == 100.0
        np.testing.assert_allclose(
            record.signal, ptbxl_tree.signals_lr[int(record.record_id)], atol=RESOLUTION_MV
        )


def test_age_300_is_topcoded_to_90(ptbxl_tree):
    records, _ = read_all(PTBXLReader(ptbxl_tree.root, "ptbxl"))
    record = _by_id(records)["2"]
    assert record.metadata["age"] == 90.0
    assert record.metadata["age_topcoded"] is True


def test_superclasses_and_subclasses_from_diagnostic_statements(ptbxl_tree):
    by_id = _by_id(read_all(PTBXLReader(ptbxl_tree.root, "ptbxl"))[0])
    # Record 1: NORM is diagnostic; LVOLT (form) and SR (rhythm) are not.
    assert by_id["1"].metadata["diagnoses"] == ["LVOLT", "NORM", "SR"]
    assert by_id["1"].metadata["superclasses"] == ["NORM"]
    assert by_id["1"].metadata["subclasses"] == ["NORM"]
    # Record 2: LVH at likelihood 0 counts by default (the benchmark ignores likelihood).
    assert by_id["2"].metadata["superclasses"] == ["HYP", "MI"]
    assert by_id["2"].metadata["subclasses"] == ["IMI", "LVH"]
    # Record 3: two MI statements -> one superclass, two subclasses.
    assert by_id["3"].metadata["superclasses"] == ["MI"]
    assert by_id["3"].metadata["subclasses"] == ["AMI", "IMI"]


def test_min_likelihood_drops_uncertain_statements(ptbxl_tree):
    reader = PTBXLReader(ptbxl_tree.root, "ptbxl", min_likelihood=50)
    by_id = _by_id(read_all(reader)[0])
    assert by_id["2"].metadata["superclasses"] == []  # IMI 35, LVH 0
    assert by_id["3"].metadata["subclasses"] == ["AMI", "IMI"]  # 100 and 50 both kept
    assert by_id["2"].metadata["diagnoses"] == ["IMI", "LVH", "SR"]  # codes present are kept


def test_bad_rows_become_rejections(ptbxl_tree):
    database = ptbxl_tree.database.copy()
    extra_rows = pd.DataFrame(
        [
            {**database.iloc[0].to_dict(), "ecg_id": 4, "patient_id": np.nan},
            {**database.iloc[0].to_dict(), "ecg_id": 5, "scp_codes": "{'NORM': 100.0"},
            {**database.iloc[0].to_dict(), "ecg_id": 6, "filename_hr": "records500/00000/00006_hr"},
        ]
    )
    pd.concat([database, extra_rows]).to_csv(ptbxl_tree.root / "ptbxl_database.csv", index=False)
    # A truncated signal file: the header promises more samples than the .dat holds.
    dat = ptbxl_tree.root / "records500/00000/00003_hr.dat"
    dat.write_bytes(dat.read_bytes()[:100])
    records, rejections = read_all(PTBXLReader(ptbxl_tree.root, "ptbxl"))
    assert sorted(r.record_id for r in records) == ["1", "2"]
    reasons = {r.record_id: r for r in rejections}
    assert reasons["4"].reason is Reason.MISSING_PATIENT_ID
    assert reasons["5"].reason is Reason.BAD_METADATA and "scp_codes" in reasons["5"].detail
    assert reasons["6"].reason is Reason.UNREADABLE
    assert reasons["6"].source_file.endswith("00006_hr.hea")
    assert reasons["3"].reason is Reason.UNREADABLE
    assert all(r.detail for r in rejections)


def test_constructor_fails_early_on_wrong_layout(tmp_path, ptbxl_tree):
    with pytest.raises(CapeError, match=r"ptbxl_database\.csv"):
        PTBXLReader(tmp_path, "x")
    statements = ptbxl_tree.root / "scp_statements.csv"
    pd.read_csv(statements, index_col=0).drop(columns=["diagnostic_class"]).to_csv(statements)
    with pytest.raises(CapeError, match="diagnostic_class"):
        PTBXLReader(ptbxl_tree.root, "x")
    statements.unlink()
    with pytest.raises(CapeError, match=r"scp_statements\.csv"):
        PTBXLReader(ptbxl_tree.root, "x")


@pytest.mark.parametrize(
    "options",
    [{"sampling_rate": 250}, {"min_likelihood": -1}, {"records_per_task": 0}, {"sample_rate": 500}],
)
def test_bad_options_raise(ptbxl_tree, options):
    with pytest.raises(CapeError, match="ptbxl reader"):
        PTBXLReader(ptbxl_tree.root, "x", **options)


def test_tasks_are_chunks_with_stable_keys(ptbxl_tree):
    tasks = PTBXLReader(ptbxl_tree.root, "x", records_per_task=2).tasks()
    assert [t.key for t in tasks] == ["rows-000000-000001", "rows-000002-000002"]
    assert [t.n_items for t in tasks] == [2, 1]
    again = PTBXLReader(ptbxl_tree.root, "x", records_per_task=2).tasks()
    assert [t.key for t in again] == [t.key for t in tasks]


def test_header_without_sampling_rate_falls_back_to_the_folder_rate(ptbxl_tree):
    header = ptbxl_tree.root / "records500/00000/00001_hr.hea"
    lines = header.read_text().splitlines()
    lines[0] = " ".join(lines[0].split()[:2])  # "00001_hr 12" -- no fs, no length
    header.write_text("\n".join(lines) + "\n")
    by_id = _by_id(read_all(PTBXLReader(ptbxl_tree.root, "x"))[0])
    assert by_id["1"].sampling_rate_hz == 500.0


def test_parse_scp_codes():
    assert parse_scp_codes("{'NORM': 100.0, 'SR': 0.0}") == {"NORM": 100.0, "SR": 0.0}
    for bad in ("", "[1, 2]", "{'A': 'x'}", "__import__('os')", None, math.nan):
        with pytest.raises(ValueError):
            parse_scp_codes(bad)


def test_missing_records_folder_fails_early(ptbxl_tree):
    shutil.rmtree(ptbxl_tree.root / "records100")
    with pytest.raises(CapeError, match="records100"):
        PTBXLReader(ptbxl_tree.root, "x", sampling_rate=100)
    PTBXLReader(ptbxl_tree.root, "x")  # the 500 Hz records are still there
