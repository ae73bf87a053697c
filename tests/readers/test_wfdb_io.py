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


@pytest.mark.parametrize("fmt", ["16", "212", "80", "24", "32"])
def test_header_checked_against_the_file_then_read_like_wfdb(tmp_path: Path, fmt: str) -> None:
    from cape.readers.wfdb_io import inspect_header, read_wfdb

    signal = np.random.default_rng(1).normal(scale=0.1, size=(1234, 4))
    wfdb.wrsamp(
        "rec",
        fs=500,
        units=["mV", "mV", "uV", "mV"],
        sig_name=["I", "II", "V1", "V2"],
        p_signal=signal,
        fmt=[fmt] * 4,
        adc_gain=[100.0, 200.0, 100.0, 50.0],  # small enough for 8- and 12-bit formats
        baseline=[0, 12, -40, 3],
        write_dir=str(tmp_path),
    )
    info = inspect_header(tmp_path / "rec")
    assert (info.n_signals, info.n_samples, info.files) == (4, 1234, ("rec.dat",))
    expected = wfdb.rdrecord(str(tmp_path / "rec"), sampfrom=100, sampto=700).p_signal.T
    signal, rate, names, _ = read_wfdb(tmp_path / "rec", 100, 700)
    assert rate == 500 and names == ["I", "II", "V1", "V2"]
    scales = np.array([1.0, 1.0, 1e-3, 1.0])[:, None]  # units differ: all read as mV
    np.testing.assert_allclose(signal, expected * scales, rtol=1e-12)
    # Cut the signal file: the header's claim no longer holds, nothing is read.
    data = tmp_path / "rec.dat"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(ValueError, match="claims 1234 samples"):
        inspect_header(tmp_path / "rec")


def test_header_naming_a_file_elsewhere_is_refused(tmp_path: Path) -> None:
    from cape.readers.wfdb_io import inspect_header

    (tmp_path / "rec.hea").write_text("rec 1 500 10\n../other/x.dat 16 200/mV 16 0 0 0 0 I\n")
    with pytest.raises(ValueError, match="outside the record's folder"):
        inspect_header(tmp_path / "rec")


def test_records_over_the_caps_are_too_long(tmp_path: Path) -> None:
    from cape.readers.wfdb_io import MAX_RECORD_SECONDS, RecordTooLong, read_wfdb

    n_samples = int(MAX_RECORD_SECONDS * 100) + 100  # at 100 Hz, just over the cap
    (tmp_path / "rec.hea").write_text(f"rec 1 100 {n_samples}\nrec.dat 16 200/mV 16 0 0 0 0 I\n")
    (tmp_path / "rec.dat").write_bytes(bytes(2 * n_samples))
    with pytest.raises(RecordTooLong, match="cap"):
        read_wfdb(tmp_path / "rec")
    signal, *_ = read_wfdb(tmp_path / "rec", 0, 1000)  # a window is fine
    assert signal.shape == (1, 1000)
