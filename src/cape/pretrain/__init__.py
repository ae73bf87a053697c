"""Patient-contrastive pretraining: config, data path, loop, checkpoints, encoder export.

Main entry points::

    from cape.pretrain import load_config, pretrain, load_encoder
    config = load_config("small", ["store=stores/demo", "out_dir=runs/demo"])
    run_dir = pretrain(config)
    encoder, config = load_encoder(run_dir)                 # trained, eval mode
    baseline, _ = load_encoder(run_dir, untrained=True)     # same architecture and seed
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cape.pretrain.config import (
        MaskingSettings,
        ModelSettings,
        PretrainConfig,
        load_config,
        save_config,
    )
    from cape.pretrain.encoder_io import build_model, export_encoder, load_encoder
    from cape.pretrain.rundir import RunDir
    from cape.pretrain.train import pretrain

# Imported on first use, so that reading or checking a config (cape.pretrain.config,
# `cape study check`) does not load torch.
_LAZY = {
    "MaskingSettings": "cape.pretrain.config",
    "ModelSettings": "cape.pretrain.config",
    "PretrainConfig": "cape.pretrain.config",
    "load_config": "cape.pretrain.config",
    "save_config": "cape.pretrain.config",
    "build_model": "cape.pretrain.encoder_io",
    "export_encoder": "cape.pretrain.encoder_io",
    "load_encoder": "cape.pretrain.encoder_io",
    "RunDir": "cape.pretrain.rundir",
    "pretrain": "cape.pretrain.train",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cape.pretrain' has no attribute {name!r}")


__all__ = [
    "MaskingSettings",
    "ModelSettings",
    "PretrainConfig",
    "RunDir",
    "build_model",
    "export_encoder",
    "load_config",
    "load_encoder",
    "pretrain",
    "save_config",
]
