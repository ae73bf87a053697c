"""The notebook API: cape.load_encoder(...).embed(arrays) against `cape ingest` + `cape embed`.

Reference: the CLI path on WFDB files written with wfdb's own writer. The API
applies the store's int16 microvolt rounding itself, so the encoder's inputs
must be *identical* (asserted sample for sample), and the features equal up
to the float32 rounding of the encoder's arithmetic.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import wfdb

import cape
from cape.arrays import store_slots
from cape.cli import main as cape_main
from cape.embed import load_features
from cape.errors import CapeError
from cape.leads import STANDARD_12
from cape.pretrain import export_encoder
from cape.store import CohortStore

from .helpers import FS, raw_ecg, small_encoder

# CODE-15%-style spellings, so the API's lead aliasing is exercised too.
LEADS = ["DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
SECONDS = (10.0, 8.0, 12.5, 10.0)  # shorter and longer than the 10 s slot


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wfdb")
    rows = []
    for k, seconds in enumerate(SECONDS):
        wfdb.wrsamp(
            f"r{k}",
            fs=FS,
            units=["mV"] * 12,
            sig_name=LEADS,
            p_signal=raw_ecg(k, seconds).T,
            fmt=["16"] * 12,
            adc_gain=[1000.0] * 12,
            baseline=[0] * 12,
            write_dir=str(folder),
        )
        rows.append({"path": f"r{k}", "record_id": f"r{k}", "patient_id": f"p{k // 2}"})
    pd.DataFrame(rows).to_csv(folder / "metadata.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained small encoder on 7 s windows."""
    encoder, config = small_encoder(["seed=3"])
    path = tmp_path_factory.mktemp("enc") / "encoder.safetensors"
    export_encoder(encoder, config, path)
    return path


def _raw(source: Path) -> list[np.ndarray]:
    """The records as a user reads them: wfdb's physical signal, ``(12, n)``."""
    return [wfdb.rdrecord(str(source / f"r{k}")).p_signal.T for k in range(len(SECONDS))]


def test_api_equals_ingest_then_embed(source: Path, encoder_file: Path, tmp_path: Path):
    torch.set_num_threads(1)
    store_path, features_path = tmp_path / "store", tmp_path / "features"
    ingest = ["ingest", "wfdb", str(source), "--cohort", "c", "--mains", "50"]
    assert cape_main([*ingest, "--out", str(store_path), "--workers", "1", "--no-progress"]) == 0
    embed = ["embed", "--checkpoint", str(encoder_file), "--store", str(store_path)]
    assert cape_main([*embed, "--out", str(features_path), "--no-progress"]) == 0
    cli, index = load_features(features_path)
    order = [int(rid[1:]) for rid in index["record_id"]]
    assert sorted(order) == list(range(len(SECONDS)))

    raw = _raw(source)
    # The encoder's inputs: the store's int16 slots, sample for sample.
    store = CohortStore.open(store_path)
    slots = store_slots(raw, FS, leads=LEADS, mains_hz=50)
    for row, k in enumerate(order):
        np.testing.assert_array_equal(slots.microvolts[k], store.read_raw(row))
        assert slots.valid_lengths[k] == store.valid_lengths[row]

    encoder = cape.load_encoder(encoder_file)
    api = encoder.embed(raw, sampling_rate=FS, leads=LEADS, mains_hz=50)
    assert api.dtype == np.float32 and api.shape == (len(SECONDS), encoder.feature_dim)
    # Identical inputs; only the encoder's float32 arithmetic may differ (oneDNN picks
    # kernels by batch shape): its rounding is ~1e-7 relative per operation.
    scale = float(np.abs(cli).max())
    np.testing.assert_allclose(api[order], cli, rtol=0, atol=1e-5 * scale)
    # Sensitivity: without the notch the features move far beyond that tolerance.
    other = encoder.embed(raw, sampling_rate=FS, leads=LEADS, mains_hz=None)
    assert np.abs(other[order] - cli).max() > 1e-3 * scale


def test_array_input_units_and_lead_forms(encoder_file: Path):
    torch.set_num_threads(1)
    signals = np.stack([raw_ecg(k, 10.0) for k in range(3)])  # (3, 12, 5000), standard order
    encoder = cape.load_encoder(encoder_file)
    reference = encoder.embed(signals, sampling_rate=FS, mains_hz=50, batch_size=2)
    assert reference.shape == (3, encoder.feature_dim)
    # Same signals as a list, one record at a time, in microvolts: int16 rounding may move
    # a sample by 1 µV where x * 1000 * 1e-3 is not exactly x, hence a tolerance.
    as_list = encoder.embed(list(signals * 1000), sampling_rate=FS, mains_hz=50, units="uV")
    single = encoder.embed(signals[0], sampling_rate=FS, mains_hz=50)
    scale = float(np.abs(reference).max())
    np.testing.assert_allclose(as_list, reference, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(single, reference[:1], rtol=0, atol=1e-5 * scale)
    # Lead I missing: derived from II and III (Einthoven), up to 1 µV of rounding.
    without_i = encoder.embed(signals[:, 1:], sampling_rate=FS, leads=STANDARD_12[1:], mains_hz=50)
    np.testing.assert_allclose(without_i, reference, rtol=0, atol=1e-4 * scale)
    with pytest.raises(ValueError, match="leads"):
        encoder.embed(signals[:, :5], sampling_rate=FS)
    with pytest.raises(ValueError, match="unit"):
        encoder.embed(signals, sampling_rate=FS, units="furlongs")


def test_records_ingest_would_reject(encoder_file: Path, caplog: pytest.LogCaptureFixture):
    encoder = cape.load_encoder(encoder_file)
    with caplog.at_level("WARNING", logger="cape.arrays"):
        features = encoder.embed([raw_ecg(0, 5.0)], sampling_rate=FS)  # under 7 s: padded
    assert features.shape == (1, encoder.feature_dim) and "too_short" in caplog.text
    with pytest.raises(ValueError, match="too short to filter"):
        encoder.embed([raw_ecg(0, 0.5)], sampling_rate=FS)
    nan = raw_ecg(1, 10.0)
    nan[1, 100] = np.nan  # lead II (a NaN in aVR would not matter: aVR is not kept)
    with pytest.raises(ValueError, match="non-finite"):
        encoder.embed(nan, sampling_rate=FS)


def test_import_stays_lazy():
    code = (
        "import sys, cape, cape.cli; cape.cli.build_parser(); cape.preprocess; "
        "print('torch' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert "load_encoder" in dir(cape)
    with pytest.raises(AttributeError):
        cape.no_such_thing  # noqa: B018


def test_load_errors(tmp_path: Path):
    with pytest.raises(CapeError, match="does not exist"):
        cape.load_encoder(tmp_path / "nothing")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CapeError, match="not a CAPE encoder export"):
        cape.load_encoder(tmp_path)
