"""Patient-contrastive pretraining: config, data path, loop, checkpoints, encoder export.

Main entry points::

    from cape.pretrain import load_config, pretrain, load_encoder
    config = load_config("small", ["store=stores/demo", "out_dir=runs/demo"])
    run_dir = pretrain(config)
    encoder, config = load_encoder(run_dir)                 # trained, eval mode
    baseline, _ = load_encoder(run_dir, untrained=True)     # same architecture and seed
"""

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
