"""The non-linear projection head and the encoder + head pair trained by the loss.

SimCLR (Chen et al., ICML 2020) showed that applying the contrastive loss to
a small MLP on top of the features, rather than to the features themselves,
gives better features: the head can discard what the loss needs to be
invariant to, while the features keep it. CAPE keeps the features (encoder
output) for downstream use and discards the head after pretraining.

Default head: ``Linear(feature_dim, feature_dim) -> ReLU -> Linear(feature_dim,
128)``. The hidden width equals the feature width, as in SimCLR; 128 output
dimensions is SimCLR's default and their ablation found the output size
barely matters. The head has no batch norm on purpose: batch norm in the head
would add a second batch-statistics path through which IDB's single-cohort
batches change what the loss sees, confounding the batch-norm switch in the
encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from cape.models.resnet import ResNet1dEncoder


class ProjectionHead(nn.Module):
    """Two-layer MLP: ``(batch, in_dim)`` -> ``(batch, out_dim)``.

    Args:
        in_dim: feature size.
        hidden_dim: hidden layer size.
        out_dim: projection size (where the loss is applied).

    Raises:
        ValueError: a non-positive size.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        if min(in_dim, hidden_dim, out_dim) < 1:
            raise ValueError(
                f"projection sizes must be positive, got {in_dim, hidden_dim, out_dim}"
            )
        self.layers = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class ContrastiveModel(nn.Module):
    """Encoder plus projection head; what pretraining optimises.

    Args:
        encoder: the ECG encoder.
        projection_hidden_dim: hidden size of the head (``None``: the feature size).
        projection_dim: output size of the head.
    """

    def __init__(
        self, encoder: ResNet1dEncoder, projection_hidden_dim: int | None, projection_dim: int
    ) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = projection_hidden_dim or encoder.feature_dim
        self.head = ProjectionHead(encoder.feature_dim, hidden, projection_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_leads, samples)`` -> projections ``(batch, projection_dim)``."""
        return self.head(self.encoder(x))
