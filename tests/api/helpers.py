"""Signals and encoders for the API tests: raw 12-lead ECGs and a small encoder with
batch-norm statistics that are not the identity (so every lead and sample matters)."""

from __future__ import annotations

import numpy as np
import torch

from cape.models import ResNet1dEncoder
from cape.pretrain import build_model
from cape.pretrain.config import PretrainConfig, load_config

FS = 500


def raw_ecg(seed: int, seconds: float, fs: int = FS) -> np.ndarray:
    """A 12-lead signal in mV ``(12, n)``, standard order: beats, baseline wander, 50 Hz hum,
    noise; limb leads consistent (III = II - I, Goldberger)."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * fs)) / fs
    beat = np.exp(-(((t * rng.uniform(0.9, 1.4)) % 1.0 - 0.4) ** 2) / (2 * 0.012**2))
    wander = 0.2 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6))
    hum = 0.05 * np.sin(2 * np.pi * 50 * t)
    lead_i = 0.6 * beat + wander + hum + rng.normal(0, 0.02, t.size)
    lead_ii = 1.1 * beat - wander + hum + rng.normal(0, 0.02, t.size)
    limb = [lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2]
    chest = [(0.3 + 0.2 * k) * beat + rng.normal(0, 0.02, t.size) for k in range(6)]
    return np.stack([lead_i, lead_ii, *limb, *chest])


def small_encoder(overrides: list[str], seed: int = 0) -> tuple[ResNet1dEncoder, PretrainConfig]:
    """The untrained ``small`` encoder of a config, with random batch-norm running statistics."""
    config = load_config("small", overrides)
    encoder = build_model(config).encoder
    generator = torch.Generator().manual_seed(seed)
    for module in encoder.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
    return encoder, config
