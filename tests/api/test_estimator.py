"""cape.CapeEmbedder in a scikit-learn Pipeline before a Ridge head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

import cape
from cape.pretrain import export_encoder

from .helpers import FS, raw_ecg, small_encoder


@pytest.fixture()
def encoder_file(tmp_path: Path) -> Path:
    encoder, config = small_encoder(["crop_seconds=3.0"])
    export_encoder(encoder, config, tmp_path / "encoder.safetensors")
    return tmp_path / "encoder.safetensors"


def test_pipeline_with_ridge(encoder_file: Path):
    torch.set_num_threads(1)
    signals = np.stack([raw_ecg(k, 9.0) for k in range(6)])
    ages = np.linspace(30, 80, 6)
    pipeline = Pipeline(
        [("embed", cape.CapeEmbedder(str(encoder_file), sampling_rate=FS)), ("ridge", Ridge())]
    )
    predicted = pipeline.fit(signals, ages).predict(signals)
    features = cape.load_encoder(encoder_file).embed(signals, sampling_rate=FS)
    np.testing.assert_allclose(predicted, Ridge().fit(features, ages).predict(features))
    assert pipeline.named_steps["embed"].n_features_out_ == features.shape[1]
    pipeline.set_params(embed__mains_hz=50)
    assert clone(pipeline).get_params()["embed__mains_hz"] == 50
    assert clone(pipeline).named_steps["embed"].encoder == str(encoder_file)
