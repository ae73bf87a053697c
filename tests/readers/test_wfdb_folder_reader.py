from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cape.errors import CapeError
from cape.readers._common import clean_id
from cape.readers.wfdb_folder import WFDBFolderReader
from cape.record import Reason

from .conftest import PTBXL_LEADS, read_all, synthetic_ecg, write_wfdb

RESOLUTION_MV = 0.5e-3 + 1e-9


@dataclass
class Folder:
    root: Path
    signals: dict[str, np.ndarray]  # record_id -> expected (n_leads, n) in the file's units
    table: pd.DataFrame


@pytest.fixture(scope="session")
def _folder_master(tmp_path_factory: pytest.TempPathFactory) -> Folder:
    root = tmp_path_factory.mktemp("wfdb_master") / "cohort"
    signals = {
        "r001": write_wfdb(
            root / "p01/s1", "r001", synthetic_ecg(2500, 250.0, 1), 250.0, PTBXL_LEADS
        ),
        "r002": write_wfdb(
            root / "p01/s2", "r002", synthetic_ecg(2500, 250.0, 2), 250.0, PTBXL_LEADS
        ),
        # 25 s record, for windowing.
        "r003": write_wfdb(
            root / "p02/s1", "r003", synthetic_ecg(6250, 250.0, 3), 250.0, PTBXL_LEADS
        ),
    }
    table = pd.DataFrame(
        {
            "path": ["p01/s1/r001", "p01/s2/r002", "p02/s1/r003"],
            "record_id": ["r001", "r002", "r003"],
            "patient_id": ["007", "007", "042"],  # leading zeros must survive
            "age": ["63", "64", ""],
            "sex": ["female", "F", "M"],
            "device": ["MAC5500", "MAC5500", "CardioSoft"],
            "site": ["A", "A", "B"],
            "ethnicity": ["white", "white", "asian"],
            "recording_date": ["2020-01-01", "2021-01-01", "2020-06-01"],
            "bmi": ["24.1", "24.5", "31.0"],
        }
    )
    table.to_csv(root / "metadata.csv", index=False)
    return Folder(root, signals, table)


@pytest.fixture
def folder(_folder_master: Folder, tmp_path: Path) -> Folder:
    root = tmp_path / "cohort"
    shutil.copytree(_folder_master.root, root)
    return Folder(root, _folder_master.signals, _folder_master.table.copy())


def test_reads_records_and_metadata(folder):
    records, rejections = read_all(WFDBFolderReader(folder.root, "mimic"))
    assert rejections == []
    by_id = {r.record_id: r for r in records}
    assert sorted(by_id) == ["r001", "r002", "r003"]
    for record_id, expected in folder.signals.items():
        np.testing.assert_allclose(by_id[record_id].signal, expected, atol=RESOLUTION_MV)
        assert by_id[record_id].sampling_rate_hz == 250.0
        assert by_id[record_id].units == "mV"
        assert by_id[record_id].lead_names == PTBXL_LEADS
    first = by_id["r001"]
    assert first.patient_id == "007" and by_id["r003"].patient_id == "042"
    assert first.metadata["age"] == 63.0 and np.isnan(by_id["r003"].metadata["age"])
    assert first.metadata["sex"] == "F" and by_id["r003"].metadata["sex"] == "M"
    assert first.metadata["device"] == "MAC5500" and first.metadata["site"] == "A"
    assert first.metadata["ethnicity"] == "white"
    assert first.metadata["recording_date"] == "2020-01-01"
    assert json.loads(first.metadata["extra"]) == {"bmi": "24.1"}
    assert first.source_file == str(folder.root / "p01/s1/r001.hea")


def test_window_seconds_cuts_consecutive_windows(folder):
    reader = WFDBFolderReader(folder.root, "mimic", window_seconds=10)
    records, rejections = read_all(reader)
    windows = sorted(
        (r for r in records if r.record_id.startswith("r003")), key=lambda r: r.record_id
    )
    # 25 s -> two full 10 s windows; the trailing 5 s are dropped.
    assert [w.record_id for w in windows] == ["r003_w0", "r003_w1"]
    expected = folder.signals["r003"]
    for k, window in enumerate(windows):
        assert window.signal.shape == (12, 2500)
        np.testing.assert_allclose(
            window.signal, expected[:, k * 2500 : (k + 1) * 2500], atol=RESOLUTION_MV
        )
        assert window.patient_id == "042"
    assert {r.record_id for r in records} >= {"r001_w0", "r002_w0"}
    assert rejections == []
    # A record shorter than one window is rejected, not silently dropped.
    _, rejections = read_all(WFDBFolderReader(folder.root, "mimic", window_seconds=12))
    assert {r.record_id for r in rejections} == {"r001", "r002"}
    assert {r.reason for r in rejections} == {Reason.TOO_SHORT}


def test_mixed_units_are_converted_to_mv(folder):
    signal_mv = synthetic_ecg(500, 250.0, 9)[:3]
    # Lead II written in microvolts (1 digital unit per uV), I and V1 in mV (1000 per mV).
    in_file = signal_mv * np.array([[1.0], [1000.0], [1.0]])
    written = write_wfdb(
        folder.root / "p03",
        "r004",
        in_file,
        250.0,
        ["I", "II", "V1"],
        units=["mV", "uV", "mV"],
        gain=[1000.0, 1.0, 1000.0],
    )
    table = pd.concat(
        [folder.table, pd.DataFrame([{"path": "p03/r004", "record_id": "r004", "patient_id": "9"}])]
    )
    table.to_csv(folder.root / "metadata.csv", index=False)
    by_id = {r.record_id: r for r in read_all(WFDBFolderReader(folder.root, "m"))[0]}
    record = by_id["r004"]
    assert record.units == "mV"
    np.testing.assert_allclose(
        record.signal, written / np.array([[1.0], [1000.0], [1.0]]), atol=1e-9
    )
    np.testing.assert_allclose(record.signal, signal_mv, atol=RESOLUTION_MV)


def test_missing_files_orphans_and_missing_ids_are_rejected(folder):
    table = pd.concat(
        [
            folder.table,
            pd.DataFrame(
                [
                    {"path": "p09/gone", "record_id": "gone", "patient_id": "1"},
                    {"path": "p01/s1/r001", "record_id": "no_patient", "patient_id": None},
                ]
            ),
        ]
    )
    table.to_csv(folder.root / "metadata.csv", index=False)
    write_wfdb(folder.root / "p05", "orphan", synthetic_ecg(500, 250.0, 5), 250.0, PTBXL_LEADS)
    records, rejections = read_all(WFDBFolderReader(folder.root, "m"))
    assert len(records) == 3
    by_reason = {r.reason: r for r in rejections}
    assert len(rejections) == 3
    assert by_reason[Reason.UNREADABLE].record_id == "gone"
    assert "does not exist" in by_reason[Reason.UNREADABLE].detail
    assert by_reason[Reason.MISSING_PATIENT_ID].record_id == "no_patient"
    assert by_reason[Reason.BAD_METADATA].source_file.endswith("p05/orphan.hea")
    for off in (False, "false"):
        _, without_check = read_all(WFDBFolderReader(folder.root, "m", check_orphans=off))
        assert Reason.BAD_METADATA not in {r.reason for r in without_check}
        assert len(without_check) == 2


def test_header_without_sampling_rate_is_unknown_not_250(folder):
    header = folder.root / "p01/s1/r001.hea"
    lines = header.read_text().splitlines()
    lines[0] = " ".join(lines[0].split()[:2])
    header.write_text("\n".join(lines) + "\n")
    _, rejections = read_all(WFDBFolderReader(folder.root, "m"))
    assert [(r.record_id, r.reason) for r in rejections] == [("r001", Reason.UNKNOWN_SAMPLING_RATE)]


def test_corrupt_header_is_unreadable(folder):
    (folder.root / "p01/s2/r002.hea").write_text("this is not a header\n")
    _, rejections = read_all(WFDBFolderReader(folder.root, "m"))
    assert [(r.record_id, r.reason) for r in rejections] == [("r002", Reason.UNREADABLE)]


def test_mimic_record_list_with_fallback_columns(folder):
    (folder.root / "metadata.csv").unlink()
    pd.DataFrame(
        {
            "subject_id": [10000032, 10000032, 10000117],
            "study_id": [40689238, 44458630, 49036311],
            "file_name": ["r001", "r002", "r003"],
            "ecg_time": ["2180-07-23 08:44:00", "2180-07-23 09:54:00", "2181-03-04 17:14:00"],
            "path": ["p01/s1/r001", "p01/s2/r002", "p02/s1/r003"],
        }
    ).to_csv(folder.root / "record_list.csv", index=False)
    records, rejections = read_all(WFDBFolderReader(folder.root, "mimic"))
    assert rejections == []
    by_id = {r.record_id: r for r in records}
    assert sorted(by_id) == ["40689238", "44458630", "49036311"]
    assert by_id["40689238"].patient_id == "10000032"
    assert by_id["40689238"].metadata["recording_date"] == "2180-07-23 08:44:00"
    assert json.loads(by_id["40689238"].metadata["extra"]) == {"file_name": "r001"}


def test_parquet_table_and_custom_columns_and_path_as_record_id(folder):
    table = folder.table.rename(columns={"patient_id": "mrn", "sex": "gender"})
    table = table.drop(columns=["record_id"])
    table["mrn"] = table["mrn"].astype(str)
    table.to_parquet(folder.root / "meta.parquet")
    reader = WFDBFolderReader(
        folder.root, "m", metadata="meta.parquet", columns={"patient_id": "mrn", "sex": "gender"}
    )
    by_id = {r.record_id: r for r in read_all(reader)[0]}
    assert sorted(by_id) == ["p01/s1/r001", "p01/s2/r002", "p02/s1/r003"]
    assert by_id["p01/s1/r001"].patient_id == "007"
    assert by_id["p01/s1/r001"].metadata["sex"] == "F"


def test_constructor_fails_early(tmp_path, folder):
    with pytest.raises(CapeError, match="no metadata table"):
        WFDBFolderReader(tmp_path, "m")
    with pytest.raises(CapeError, match="not a folder"):
        WFDBFolderReader(tmp_path / "nope", "m")
    with pytest.raises(CapeError, match="'mrn'"):
        WFDBFolderReader(folder.root, "m", columns={"patient_id": "mrn"})
    with pytest.raises(CapeError, match="unknown field"):
        WFDBFolderReader(folder.root, "m", columns={"weight": "w"})
    with pytest.raises(CapeError, match="window_seconds"):
        WFDBFolderReader(folder.root, "m", window_seconds=0)
    folder.table.drop(columns=["patient_id"]).to_csv(folder.root / "metadata.csv", index=False)
    with pytest.raises(CapeError, match="no patient_id column"):
        WFDBFolderReader(folder.root, "m")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (15709.0, "15709"),
        ("15709.0", "15709"),
        ("007", "007"),
        (np.int64(12), "12"),
        (float("nan"), None),
        ("", None),
        (None, None),
        (1.5, "1.5"),
        (" ab ", "ab"),
    ],
)
def test_clean_id(value, expected):
    assert clean_id(value) == expected


def test_absolute_paths_in_the_table_are_not_orphans(folder):
    table = folder.table.copy()
    table["path"] = [str(folder.root / p) + ".hea" for p in table["path"]]
    table.to_csv(folder.root / "metadata.csv", index=False)
    records, rejections = read_all(WFDBFolderReader(folder.root, "m"))
    assert rejections == []
    assert sorted(r.record_id for r in records) == ["r001", "r002", "r003"]
