"""The format-16 fast path against wfdb.rdrecord on files written by wfdb.wrsamp."""

from pathlib import Path

import numpy as np
import pytest
import wfdb

from cape.readers.wfdb_io import read_format16


def _write(folder: Path, name: str, fmt: str = "16", nan: bool = False) -> np.ndarray:
    rng = np.random.default_rng(0)
    signal = rng.normal(scale=0.8, size=(1234, 4))
    signal[:, 2] += 3.0  # an offset lead
    if nan:
        signal[100:105, 1] = np.nan
    wfdb.wrsamp(
        name,
        fs=500,
        units=["mV", "mV", "uV", "mV"],
        sig_name=["I", "II", "V1", "V2"],
        p_signal=signal,
        fmt=[fmt] * 4,
        adc_gain=[1000.0, 200.0, 1000.0, 500.0],
        baseline=[0, 12, -40, 3],
        write_dir=str(folder),
    )
    return signal


@pytest.mark.parametrize("nan", [False, True])
def test_matches_wfdb(tmp_path: Path, nan: bool):
    _write(tmp_path, "rec", nan=nan)
    fast = read_format16(tmp_path / "rec")
    assert fast is not None
    signal, rate, names, units = fast
    reference = wfdb.rdrecord(str(tmp_path / "rec"))
    np.testing.assert_array_equal(np.isnan(signal), np.isnan(reference.p_signal.T))
    np.testing.assert_allclose(signal, reference.p_signal.T, rtol=0, atol=1e-12, equal_nan=True)
    assert rate == reference.fs == 500
    assert names == reference.sig_name and units == reference.units


def test_other_formats_fall_back(tmp_path: Path):
    _write(tmp_path, "rec32", fmt="32")
    assert read_format16(tmp_path / "rec32") is None


def test_truncated_file_is_an_error(tmp_path: Path):
    _write(tmp_path, "rec")
    data = tmp_path / "rec.dat"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(ValueError, match="holds"):
        read_format16(tmp_path / "rec")
