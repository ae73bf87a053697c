"""Shared fixtures: one labelled store and one "pretrained" encoder per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cape.pretrain import build_model, export_encoder, load_config
from cape.store import CohortStore

from .helpers import labelled_store

ENCODER_SEED = 7


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> CohortStore:
    return labelled_store(tmp_path_factory.mktemp("finetune") / "store")


@pytest.fixture(scope="session")
def encoder_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``encoder.safetensors`` of the small preset on 2 s windows.

    Its weights are an initialisation (seed 7) nudged away from it, so they
    equal neither a scratch encoder of any seed nor pretraining's untrained twin.
    """
    config = load_config(None, ["model.preset=small", "crop_seconds=1.0", f"seed={ENCODER_SEED}"])
    encoder = build_model(config).encoder
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.add_(0.01)
    path = tmp_path_factory.mktemp("encoder") / "encoder.safetensors"
    export_encoder(encoder, config, path)
    return path
