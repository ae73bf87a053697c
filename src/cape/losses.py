"""NT-Xent / InfoNCE over patient pairs, with an optional same-cohort mask.

Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations" (SimCLR, ICML 2020), Eq. 1; van den Oord et al.,
"Representation Learning with Contrastive Predictive Coding" (InfoNCE). In
CAPE the two views of a "positive pair" are two different ECGs of one
patient; every other view in the (global) batch is a negative.

With ``cohorts`` given, a view's negatives are restricted to views of the
same cohort (``idb-mask``: this project's variant, not the paper's Equation 3,
which is the loss of a batch drawn from one cohort, i.e. ``idb``); it keeps the
negatives same-cohort while batches stay mixed, to separate the two effects.

Under DDP the projections of all ranks are gathered with gradients (see
:mod:`cape.dist`), so the negatives span the global batch. Each rank averages
the loss over its own rows; DDP's averaging of gradients over ranks then
yields exactly the gradient of the loss averaged over the global batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cape import dist


class ContrastiveOutput(NamedTuple):
    """Loss and (detached) similarity statistics of one batch.

    Attributes:
        loss: scalar, mean over this rank's ``2n`` views.
        positive_similarity: mean cosine similarity of positive pairs.
        negative_similarity: mean cosine similarity over the (unmasked) negatives;
            NaN if there are none.
    """

    loss: torch.Tensor
    positive_similarity: torch.Tensor
    negative_similarity: torch.Tensor


def nt_xent_loss(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    temperature: float = 0.1,
    cohorts: torch.Tensor | None = None,
    gather_distributed: bool = True,
) -> ContrastiveOutput:
    """NT-Xent loss of paired projections.

    Row ``i`` of ``z_a`` and row ``i`` of ``z_b`` are the two views of patient
    ``i``. For each of the ``2N`` views (``N`` patients in the global batch),
    ``-log(exp(s_pos / t) / sum_{k != self} exp(s_k / t))`` with ``s`` the
    cosine similarity, averaged over this rank's ``2n`` views.

    Args:
        z_a: ``(n, d)`` projections of the first views on this rank.
        z_b: ``(n, d)`` projections of the second views.
        temperature: ``t > 0`` (0.1 is the field's default).
        cohorts: optional ``(n,)`` integer cohort codes; negatives of another
            cohort are masked out.
        gather_distributed: gather all ranks' projections (with gradients) as
            negatives when a process group is initialised.

    Returns:
        :class:`ContrastiveOutput`; the loss is computed in float32 (float64 inputs
        stay float64).

    Raises:
        ValueError: mismatched shapes or a non-positive temperature.
    """
    if z_a.ndim != 2 or z_a.shape != z_b.shape:
        raise ValueError(
            f"z_a and z_b must both be (n, d); got {tuple(z_a.shape)}, {tuple(z_b.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if cohorts is not None and cohorts.shape != (z_a.shape[0],):
        raise ValueError(f"cohorts must be ({z_a.shape[0]},), got {tuple(cohorts.shape)}")
    n = z_a.shape[0]
    at_least_32 = torch.promote_types(z_a.dtype, torch.float32)
    z_a = F.normalize(z_a.to(at_least_32), dim=1)
    z_b = F.normalize(z_b.to(at_least_32), dim=1)
    gather = gather_distributed and dist.world_size() > 1
    if gather:
        all_a, all_b = dist.gather_with_grad(z_a), dist.gather_with_grad(z_b)
        offset = dist.rank() * n
    else:
        all_a, all_b, offset = z_a, z_b, 0
    n_global = all_a.shape[0]
    device = z_a.device

    queries = torch.cat([z_a, z_b])  # (2n, d)
    keys = torch.cat([all_a, all_b])  # (2N, d)
    cosine = queries @ keys.T  # (2n, 2N)
    local = torch.arange(n, device=device)
    self_column = torch.cat([offset + local, n_global + offset + local])
    positive_column = torch.cat([n_global + offset + local, offset + local])
    rows = torch.arange(2 * n, device=device)

    excluded = torch.zeros_like(cosine, dtype=torch.bool)
    excluded[rows, self_column] = True
    if cohorts is not None:
        all_cohorts = dist.gather_no_grad(cohorts) if gather else cohorts
        query_cohorts = torch.cat([cohorts, cohorts]).to(device)
        key_cohorts = torch.cat([all_cohorts, all_cohorts]).to(device)
        # The positive is of the same patient, hence the same cohort: never masked.
        excluded |= query_cohorts[:, None] != key_cohorts[None, :]
    logits = (cosine / temperature).masked_fill(excluded, float("-inf"))
    loss = F.cross_entropy(logits, positive_column)

    with torch.no_grad():
        positive = cosine[rows, positive_column]
        negatives = ~excluded
        negatives[rows, positive_column] = False
        negative_mean = (
            cosine[negatives].mean()
            if bool(negatives.any())
            else torch.tensor(float("nan"), device=device)
        )
    return ContrastiveOutput(loss, positive.mean(), negative_mean)


class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent_loss`.

    Args:
        temperature: softmax temperature (> 0).
        gather_distributed: use the global batch's negatives under DDP.

    Raises:
        ValueError: a non-positive temperature.
    """

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(
        self, z_a: torch.Tensor, z_b: torch.Tensor, cohorts: torch.Tensor | None = None
    ) -> ContrastiveOutput:
        return nt_xent_loss(z_a, z_b, self.temperature, cohorts, self.gather_distributed)
