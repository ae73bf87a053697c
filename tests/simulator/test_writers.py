"""The layouts, checked against wfdb and the real datasets' conventions."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import wfdb

from cape.simulator.cohorts import DeviceSpec
from cape.simulator.conditions import CONDITION_CODES
from cape.simulator.presets import demo
from cape.simulator.writers import (
    PTBXL_LEADS,
    Code15Writer,
    PtbxlWriter,
    SignalChunk,
    _write_wfdb,
    resample,
)


@pytest.mark.parametrize("gain", [1000.0, 1000.0 / 4.88])
def test_native_wfdb_writer_writes_what_wfdb_wrsamp_writes(tmp_path: Path, gain: float) -> None:
    rng = np.random.default_rng(0)
    signals = rng.normal(0, 1.5, (12, 2500))
    signals[3, 10] = 99.0  # saturates
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    _write_wfdb(ours / "00042_hr", signals, 500, PTBXL_LEADS, gain)
    codes = np.clip(np.rint(signals * gain), -32767, 32767).astype(np.int64)
    wfdb.wrsamp(
        "00042_hr",
        fs=500,
        units=["mV"] * 12,
        sig_name=PTBXL_LEADS,
        d_signal=codes.T,
        fmt=["16"] * 12,
        adc_gain=[gain] * 12,
        baseline=[0] * 12,
        write_dir=str(theirs),
    )
    for suffix in (".hea", ".dat"):
        assert (ours / f"00042_hr{suffix}").read_bytes() == (
            theirs / f"00042_hr{suffix}"
        ).read_bytes()
    record = wfdb.rdrecord(str(ours / "00042_hr"))
    np.testing.assert_allclose(record.p_signal.T, codes / gain)


def test_resampling_keeps_lead_algebra() -> None:
    rng = np.random.default_rng(1)
    i, ii = rng.normal(size=(2, 3, 2500))
    leads = np.stack([i, ii, ii - i], axis=1)
    out = resample(leads, 250, 400)
    assert out.shape == (3, 3, 4000)
    np.testing.assert_allclose(out[:, 2], out[:, 1] - out[:, 0], atol=1e-12)


def _chunk(n: int, seconds: int, fs: int, first_id: int) -> SignalChunk:
    rng = np.random.default_rng(first_id)
    device = DeviceSpec(name="d", sampling_rate_hz=fs, record_seconds=seconds, lowpass_hz=100)
    ecgs = pd.DataFrame({"record_id": np.arange(first_id, first_id + n)})
    return SignalChunk(rng.normal(size=(n, 12, seconds * fs)), fs, device, ecgs)


def test_code15_part_layout(tmp_path: Path) -> None:
    writer = Code15Writer(tmp_path, demo().cohort("serra"))
    writer.begin_block(3, 5)
    seven, ten = _chunk(2, 7, 500, 10), _chunk(3, 10, 250, 20)
    writer.write(seven)
    writer.write(ten)
    writer.end_block()
    with h5py.File(tmp_path / "exams_part3.hdf5", "r") as f:
        tracings, ids = f["tracings"][:], f["exam_id"][:]
    assert tracings.shape == (6, 4096, 12) and tracings.dtype == np.float32
    np.testing.assert_array_equal(ids, [10, 11, 20, 21, 22, 0])
    assert not tracings[-1].any()
    # 7 s at 400 Hz = 2800 samples, centred: 648 zeros before, 648 after.
    expected = resample(seven.signals, 500, 400)[0].T
    np.testing.assert_allclose(tracings[0, 648 : 648 + 2800], expected, rtol=1e-6, atol=1e-6)
    assert not tracings[0, :648].any() and not tracings[0, 648 + 2800 :].any()
    assert not tracings[2, :48].any() and tracings[2, 48:4048].any()


def _table_rows(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = pd.DataFrame(
        {
            "record_id": np.arange(1, n + 1),
            "patient_id": np.arange(1, n + 1) // 2 + 1,
            "age": np.linspace(20, 95, n),
            "female": rng.random(n) < 0.5,
            "ethnicity": "",
            "device": "SC-12 E",
            "recording_date": np.datetime64("1991-03-04T10:00:00", "s"),
            "heart_rate_bpm": np.linspace(45, 120, n),
            "qrs_axis_deg": np.linspace(-60, 120, n),
            "source_file": "",
            **{code: np.zeros(n, dtype=bool) for code in CONDITION_CODES},
        }
    )
    rows.loc[1, "CLBBB"] = True
    rows.loc[2, "AFIB"] = True
    return rows


def test_ptbxl_tables(tmp_path: Path) -> None:
    rows = _table_rows(40)
    PtbxlWriter(tmp_path, demo().cohort("linden")).finish(rows, np.random.default_rng(0))
    table = pd.read_csv(tmp_path / "ptbxl_database.csv", index_col="ecg_id")
    assert list(table.columns[:11]) == [
        "patient_id",
        "age",
        "sex",
        "height",
        "weight",
        "nurse",
        "site",
        "device",
        "recording_date",
        "report",
        "scp_codes",
    ]
    assert list(table.columns[-3:]) == ["strat_fold", "filename_lr", "filename_hr"]
    assert table["patient_id"].dtype == float and table["sex"].isin([0, 1]).all()
    assert (table.loc[rows["age"].to_numpy() >= 90, "age"] == 300).all()
    assert table.loc[1, "filename_hr"] == "records500/00000/00001_hr"
    assert table.loc[1, "scp_codes"] == "{'NORM': 100.0, 'SR': 0.0, 'SBRAD': 0.0}"
    assert "'CLBBB'" in table.loc[2, "scp_codes"] and "'AFIB': 0.0" in table.loc[3, "scp_codes"]
    assert table.groupby("patient_id")["strat_fold"].nunique().max() == 1
    assert set(table["strat_fold"]) <= set(range(1, 11))
    statements = pd.read_csv(tmp_path / "scp_statements.csv", index_col=0)
    assert (
        statements.loc["CLBBB", "diagnostic_class"] == "CD"
        and statements.loc["1AVB", "diagnostic_subclass"] == "_AVB"
    )
    assert statements.loc["AFIB", "rhythm"] == 1.0 and np.isnan(
        statements.loc["AFIB", "diagnostic"]
    )
