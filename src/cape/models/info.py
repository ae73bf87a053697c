"""Parameter counts and FLOPs of an encoder, for ``cape model-info`` and the docs.

FLOPs count the multiply-adds of convolutions and dense layers (2 FLOPs
each), measured by running one forward pass with hooks -- normalisation,
activations, pooling and dropout are left out (they are a few percent). A
training step is counted as 3x the forward pass (the backward pass costs about
twice the forward) for each of the two views of a patient pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cape.models.projection import ContrastiveModel
from cape.models.resnet import EncoderSpec, ResNet1dEncoder

# Backward ~ 2x forward, so forward + backward ~ 3x forward.
TRAIN_STEP_FACTOR = 3


@dataclass(frozen=True)
class ModelInfo:
    """Size and cost of an encoder (and its projection head).

    Attributes:
        encoder_parameters: trainable parameters of the encoder.
        head_parameters: trainable parameters of the projection head.
        flops_per_view: forward FLOPs of encoder + head for one ECG view.
        flops_per_pair_step: training FLOPs for one patient pair (two views).
        feature_map: ``(channels, samples)`` of the last block's output.
    """

    encoder_parameters: int
    head_parameters: int
    flops_per_view: int
    flops_per_pair_step: int
    feature_map: tuple[int, int]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def forward_flops(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs (2 x multiply-adds of convolutions and Linear layers) of one forward pass.

    Args:
        module: any module built from ``Conv1d``/``Conv2d``/``Linear`` layers (others
            are ignored).
        input_shape: ``(batch, channels, samples)``; the count is for the whole batch.
    """
    total = 0

    def conv_hook(
        layer: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor
    ) -> None:
        nonlocal total
        assert isinstance(layer, nn.Conv1d | nn.Conv2d)
        macs_per_output = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        total += 2 * macs_per_output * output.numel()

    def linear_hook(
        layer: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor
    ) -> None:
        nonlocal total
        assert isinstance(layer, nn.Linear)
        total += 2 * layer.in_features * output.numel()

    handles = []
    for layer in module.modules():
        if isinstance(layer, nn.Conv1d | nn.Conv2d):
            handles.append(layer.register_forward_hook(conv_hook))
        elif isinstance(layer, nn.Linear):
            handles.append(layer.register_forward_hook(linear_hook))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(input_shape))
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def describe_model(
    spec: EncoderSpec, projection_hidden_dim: int | None = None, projection_dim: int = 128
) -> ModelInfo:
    """Build the model once on the CPU and measure its size and cost."""
    model = ContrastiveModel(ResNet1dEncoder(spec), projection_hidden_dim, projection_dim)
    per_view = forward_flops(model, (1, spec.n_leads, spec.input_samples))
    return ModelInfo(
        encoder_parameters=count_parameters(model.encoder),
        head_parameters=count_parameters(model.head),
        flops_per_view=per_view,
        flops_per_pair_step=2 * TRAIN_STEP_FACTOR * per_view,
        feature_map=(spec.block_channels[-1], spec.feature_map_length()),
    )
