"""Named encoder architectures.

``paper``: the encoder of the CAPE paper -- Ribeiro et al.'s ResNet (stem 64,
blocks 128/196/256/320, stride 4, kernel 17) on 8 x 2800 inputs, flattening
the 320 x 11 last feature map into a dense layer with 256 post-ReLU outputs.
About 7.7 M parameters (0.9 M of them in the dense layer) and 2.6 GFLOP per
7 s view; too slow to pretrain on a laptop CPU (under 10 patient pairs/s on
2 cores).

``small``: the same topology at a quarter of the width (stem 16, blocks
32/48/64/80), global average pooling and 64 features: about 0.43 M
parameters, ~15x cheaper per view, for CPU runs, tests and the demo. Average
pooling (rather than flattening) keeps the dense layer tiny and makes the
encoder accept any input length.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cape.models.resnet import EncoderSpec

PRESETS: dict[str, EncoderSpec] = {
    "paper": EncoderSpec(
        stem_channels=64,
        block_channels=(128, 196, 256, 320),
        pooling="flatten",
        feature_dim=256,
    ),
    "small": EncoderSpec(
        stem_channels=16,
        block_channels=(32, 48, 64, 80),
        pooling="avg",
        feature_dim=64,
    ),
}


def encoder_spec(preset: str, **overrides: Any) -> EncoderSpec:
    """The spec of a named preset with some fields replaced.

    Args:
        preset: a key of :data:`PRESETS`.
        **overrides: :class:`EncoderSpec` fields to change (``None`` values are ignored).

    Raises:
        ValueError: unknown preset or field, or an invalid value.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {sorted(PRESETS)}")
    changes = {key: value for key, value in overrides.items() if value is not None}
    known = {field.name for field in dataclasses.fields(EncoderSpec)}
    unknown = set(changes) - known
    if unknown:
        raise ValueError(f"unknown encoder fields {sorted(unknown)}")
    if "block_channels" in changes:
        changes["block_channels"] = tuple(changes["block_channels"])
    return dataclasses.replace(PRESETS[preset], **changes)
