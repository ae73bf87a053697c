"""The 1-D residual encoder of Ribeiro et al. (Nat Commun 2020) and its spec.

Ribeiro, A. H. et al. "Automatic diagnosis of the 12-lead ECG using a deep
neural network", Nature Communications 11, 1760 (2020). CAPE uses their
network as the ECG encoder: a stem convolution, four residual blocks that each
downsample the time axis by 4, and a dense layer that maps the last feature
map to a post-ReLU feature vector.

Choices made here (documented in ``docs/pretraining.md``):

* Odd kernels only (17; the Keras original used 16 with ``padding="same"``).
  Padding ``(k - 1) // 2`` makes every strided convolution return
  ``ceil(L / s)`` samples and the skip path's max-pool uses ``ceil_mode``, so
  the two paths agree for any input length -- 2800 samples (7 s at 400 Hz)
  is not a multiple of 4**4 = 256, unlike the original 4096.
* Blocks are "pre-activation" as in the original: the skip path carries the
  sum *before* normalisation, and each block ends with norm -> ReLU ->
  dropout.
* Normalisation is a switch (``"batch"`` or ``"group"``): under IDB, batch
  norm's statistics come from single-cohort batches, which by itself hides
  cohort offsets from the loss.
* The 1-D convolutions run as ``1 x k`` 2-D convolutions on ``(batch,
  channels, 1, samples)`` activations in channels-last memory layout: oneDNN
  runs the small preset's training step 2.1x as fast on the CPU as the same
  network built from ``Conv1d`` (``python benchmarks/bench_model.py --compare
  conv``; docs/benchmarks.md), and cuDNN handles it natively. The arithmetic
  is the same: ``tests/test_benchmarks_conv.py`` checks every convolution
  against ``Conv1d`` within the float64 rounding bound.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

NormKind = Literal["batch", "group"]
PoolingKind = Literal["flatten", "avg"]

# GroupNorm needs a group count that divides the channel count; 196 channels
# (a paper width) allow 28 groups, most others 32.
MAX_GROUPS = 32


@dataclass(frozen=True)
class EncoderSpec:
    """Everything that defines an encoder's architecture (and so its weights' shapes).

    Attributes:
        n_leads: input channels (8: I, II, V1-V6).
        input_samples: input length in samples (2800 = 7 s at 400 Hz). Fixes the
            size of the dense layer when ``pooling == "flatten"``.
        stem_channels: filters of the stem convolution.
        block_channels: filters of each residual block.
        downsample: time-axis stride of every block.
        kernel_size: convolution kernel length (odd).
        dropout: dropout probability inside the blocks.
        norm: ``"batch"`` (the paper's) or ``"group"``.
        pooling: ``"flatten"`` (the paper's: flatten the last feature map into
            the dense layer) or ``"avg"`` (global average pool over time).
        feature_dim: size of the post-ReLU feature vector.
    """

    n_leads: int = 8
    input_samples: int = 2800
    stem_channels: int = 64
    block_channels: tuple[int, ...] = (128, 196, 256, 320)
    downsample: int = 4
    kernel_size: int = 17
    dropout: float = 0.2
    norm: NormKind = "batch"
    pooling: PoolingKind = "flatten"
    feature_dim: int = 256

    def __post_init__(self) -> None:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if not self.block_channels:
            raise ValueError("block_channels must list at least one block")
        if self.downsample < 1:
            raise ValueError(f"downsample must be >= 1, got {self.downsample}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.norm not in ("batch", "group"):
            raise ValueError(f"norm must be 'batch' or 'group', got {self.norm!r}")
        if self.pooling not in ("flatten", "avg"):
            raise ValueError(f"pooling must be 'flatten' or 'avg', got {self.pooling!r}")
        if self.input_samples < 1 or self.feature_dim < 1:
            raise ValueError("input_samples and feature_dim must be positive")

    def feature_map_length(self) -> int:
        """Time samples left after all blocks: ``ceil`` of the length / stride, per block."""
        length = self.input_samples
        for _ in self.block_channels:
            length = math.ceil(length / self.downsample)
        return length

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict (JSON/YAML/checkpoint-safe)."""
        out = dataclasses.asdict(self)
        out["block_channels"] = list(self.block_channels)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EncoderSpec:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: unknown keys or invalid values.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown encoder spec keys {sorted(unknown)}")
        values = dict(values)
        if "block_channels" in values:
            values["block_channels"] = tuple(int(c) for c in values["block_channels"])
        return cls(**values)


def group_count(channels: int) -> int:
    """Largest divisor of ``channels`` that is at most :data:`MAX_GROUPS`."""
    return max(g for g in range(1, min(channels, MAX_GROUPS) + 1) if channels % g == 0)


def make_norm(kind: NormKind, channels: int) -> nn.Module:
    """A normalisation layer over ``channels`` of ``(batch, channels, 1, samples)`` activations.

    Raises:
        ValueError: unknown kind.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(group_count(channels), channels)
    raise ValueError(f"norm must be 'batch' or 'group', got {kind!r}")


def conv_1xk(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """A 1-D convolution over the last axis of ``(batch, channels, 1, samples)``.

    Padding ``(k - 1) // 2`` (odd ``k``) gives ``ceil(samples / stride)`` outputs.
    """
    return nn.Conv2d(
        in_channels,
        out_channels,
        (1, kernel_size),
        stride=(1, stride),
        padding=(0, (kernel_size - 1) // 2),
        bias=False,
    )


class ResidualBlock1d(nn.Module):
    """One residual unit: two convolutions, the second strided, plus a skip path.

    The skip path (max-pool by the stride, then a 1x1 convolution when the
    channel count changes) carries the pre-normalisation sum from block to
    block, as in Ribeiro et al.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        downsample: int,
        kernel_size: int,
        dropout: float,
        norm: NormKind,
    ) -> None:
        super().__init__()
        self.conv1 = conv_1xk(in_channels, out_channels, kernel_size)
        self.norm1 = make_norm(norm, out_channels)
        self.conv2 = conv_1xk(out_channels, out_channels, kernel_size, stride=downsample)
        self.norm2 = make_norm(norm, out_channels)
        self.relu = nn.ReLU()
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        skip: list[nn.Module] = []
        if downsample > 1:
            # ceil_mode keeps the skip length equal to the conv path's ceil(L / s).
            skip.append(nn.MaxPool2d((1, downsample), stride=(1, downsample), ceil_mode=True))
        if in_channels != out_channels:
            skip.append(nn.Conv2d(in_channels, out_channels, 1, bias=False))
        self.skip = nn.Sequential(*skip) if skip else nn.Identity()

    def forward(self, x: torch.Tensor, carry: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: ``x`` and ``carry`` ``(batch, in_channels, 1, L)``.

        Returns:
            ``(activated, carry)``, both ``(batch, out_channels, 1, ceil(L / downsample))``.
        """
        carry = self.skip(carry)
        x = self.dropout1(self.relu(self.norm1(self.conv1(x))))
        x = self.conv2(x) + carry
        carry = x
        x = self.dropout2(self.relu(self.norm2(x)))
        return x, carry


class ResNet1dEncoder(nn.Module):
    """ECG encoder: ``(batch, n_leads, input_samples)`` mV -> ``(batch, feature_dim)`` features.

    The features are post-ReLU (non-negative), as in the CAPE paper.

    Args:
        spec: the architecture.
    """

    def __init__(self, spec: EncoderSpec) -> None:
        super().__init__()
        self.spec = spec
        self.stem = nn.Sequential(
            conv_1xk(spec.n_leads, spec.stem_channels, spec.kernel_size),
            make_norm(spec.norm, spec.stem_channels),
            nn.ReLU(),
        )
        blocks = []
        channels = spec.stem_channels
        for out_channels in spec.block_channels:
            blocks.append(
                ResidualBlock1d(
                    channels,
                    out_channels,
                    spec.downsample,
                    spec.kernel_size,
                    spec.dropout,
                    spec.norm,
                )
            )
            channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        if spec.pooling == "flatten":
            dense_in = channels * spec.feature_map_length()
        else:
            dense_in = channels
        self.dense = nn.Linear(dense_in, spec.feature_dim)
        self.relu = nn.ReLU()

    @property
    def feature_dim(self) -> int:
        return self.spec.feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode a batch.

        Args:
            x: ``(batch, n_leads, input_samples)`` float, millivolts at 400 Hz.

        Returns:
            ``(batch, feature_dim)`` post-ReLU features.

        Raises:
            ValueError: wrong number of leads, or (``pooling="flatten"``) a length
                other than ``spec.input_samples``.
        """
        if x.ndim != 3 or x.shape[1] != self.spec.n_leads:
            raise ValueError(
                f"expected (batch, {self.spec.n_leads}, samples) input, got {tuple(x.shape)}"
            )
        if self.spec.pooling == "flatten" and x.shape[2] != self.spec.input_samples:
            raise ValueError(
                f"this encoder flattens its last feature map, so it takes exactly "
                f"{self.spec.input_samples} samples; got {x.shape[2]}"
            )
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        x = self.stem(x)
        carry = x
        for block in self.blocks:
            x, carry = block(x, carry)
        # flatten() follows the logical (channel, time) order whatever the memory layout.
        x = x.flatten(1) if self.spec.pooling == "flatten" else x.mean(dim=(2, 3))
        return self.relu(self.dense(x))
