"""Encoders and projection heads for CAPE pretraining (no I/O, no global state)."""

from cape.models.info import ModelInfo, count_parameters, describe_model, forward_flops
from cape.models.presets import PRESETS, encoder_spec
from cape.models.projection import ContrastiveModel, ProjectionHead
from cape.models.resnet import EncoderSpec, ResidualBlock1d, ResNet1dEncoder, group_count

__all__ = [
    "PRESETS",
    "ContrastiveModel",
    "EncoderSpec",
    "ModelInfo",
    "ProjectionHead",
    "ResNet1dEncoder",
    "ResidualBlock1d",
    "count_parameters",
    "describe_model",
    "encoder_spec",
    "forward_flops",
    "group_count",
]
