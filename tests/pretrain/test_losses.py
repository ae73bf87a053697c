"""NT-Xent against a naive double-loop reference, and its distributed version."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from cape import dist
from cape.losses import NTXentLoss, nt_xent_loss

torch.set_num_threads(1)


def naive_nt_xent(
    z_a: torch.Tensor, z_b: torch.Tensor, temperature: float, cohorts: list[int] | None = None
) -> torch.Tensor:
    """Textbook loss: a Python loop over anchors and candidates, float64."""
    views = torch.cat([z_a, z_b]).double()
    n = z_a.shape[0]
    labels = (cohorts + cohorts) if cohorts is not None else [0] * (2 * n)
    total = torch.zeros((), dtype=torch.float64)
    for i in range(2 * n):
        partner = (i + n) % (2 * n)

        def sim(j: int, i: int = i) -> torch.Tensor:
            return torch.dot(views[i], views[j]) / (views[i].norm() * views[j].norm()) / temperature

        denominator = torch.zeros((), dtype=torch.float64)
        for k in range(2 * n):
            if k != i and labels[k] == labels[i]:
                denominator = denominator + torch.exp(sim(k))
        total = total - torch.log(torch.exp(sim(partner)) / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_matches_naive_reference_value_and_gradient(temperature: float) -> None:
    generator = torch.Generator().manual_seed(1)
    z_a = torch.randn(5, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(5, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    loss = nt_xent_loss(z_a, z_b, temperature).loss
    reference = naive_nt_xent(z_a, z_b, temperature)
    torch.testing.assert_close(loss.double(), reference, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(loss, (z_a, z_b))
    reference_grads = torch.autograd.grad(reference, (z_a, z_b))
    for grad, expected in zip(grads, reference_grads, strict=True):
        torch.testing.assert_close(grad.double(), expected, rtol=1e-4, atol=1e-6)


def test_cohort_mask_matches_naive_reference() -> None:
    generator = torch.Generator().manual_seed(2)
    z_a = torch.randn(6, 4, generator=generator, requires_grad=True)
    z_b = torch.randn(6, 4, generator=generator, requires_grad=True)
    cohorts = [0, 1, 0, 2, 1, 0]
    loss = nt_xent_loss(z_a, z_b, 0.2, torch.tensor(cohorts)).loss
    reference = naive_nt_xent(z_a, z_b, 0.2, cohorts)
    torch.testing.assert_close(loss.double(), reference, rtol=1e-5, atol=1e-6)
    unmasked = nt_xent_loss(z_a, z_b, 0.2).loss
    assert not torch.isclose(loss, unmasked)
    grads = torch.autograd.grad(loss, (z_a, z_b))
    reference_grads = torch.autograd.grad(reference, (z_a, z_b))
    for grad, expected in zip(grads, reference_grads, strict=True):
        torch.testing.assert_close(grad.double(), expected.double(), rtol=1e-4, atol=1e-5)


def test_closed_form_for_aligned_positives_and_orthogonal_negatives() -> None:
    n, temperature = 3, 0.5
    z = torch.eye(n, 8)
    out = nt_xent_loss(z, 2.0 * z, temperature)  # scale must not matter (cosine)
    expected = -math.log(math.exp(1 / temperature) / (math.exp(1 / temperature) + 2 * n - 2))
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    assert out.positive_similarity.item() == pytest.approx(1.0)
    assert out.negative_similarity.item() == pytest.approx(0.0, abs=1e-7)


def test_every_negative_masked_leaves_only_the_positive() -> None:
    z_a, z_b = torch.randn(4, 5), torch.randn(4, 5)
    out = nt_xent_loss(z_a, z_b, 0.1, cohorts=torch.arange(4))
    assert out.loss.item() == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(out.negative_similarity.item())


def test_similarity_statistics() -> None:
    generator = torch.Generator().manual_seed(3)
    z_a, z_b = torch.randn(4, 6, generator=generator), torch.randn(4, 6, generator=generator)
    out = nt_xent_loss(z_a, z_b, 0.1)
    cosine = torch.nn.functional.cosine_similarity
    assert out.positive_similarity.item() == pytest.approx(cosine(z_a, z_b).mean().item(), abs=1e-6)
    views = torch.cat([z_a, z_b])
    matrix = cosine(views[:, None], views[None, :], dim=-1)
    keep = ~torch.eye(8, dtype=torch.bool)
    keep[torch.arange(8), (torch.arange(8) + 4) % 8] = False
    assert out.negative_similarity.item() == pytest.approx(matrix[keep].mean().item(), abs=1e-6)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="both be"):
        nt_xent_loss(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature=0.0)
    with pytest.raises(ValueError, match="cohorts"):
        nt_xent_loss(torch.randn(3, 4), torch.randn(3, 4), cohorts=torch.zeros(2))


def test_single_process_helpers_are_identities() -> None:
    x = torch.randn(3, 2)
    assert dist.gather_with_grad(x) is x
    assert dist.gather_no_grad(x) is x
    assert dist.world_size() == 1 and dist.rank() == 0
    assert dist.all_gather_object({"a": 1}) == [{"a": 1}]


# ---- two processes (gloo) --------------------------------------------------------------------


def free_port() -> int:
    """A port that was free a moment ago (for torchrun's ``--master_port``).

    Racy by nature: another process may take it between this call and the
    rendezvous. The gloo tests in this file therefore meet through a file
    (``init_method="file://..."``), which needs no port at all.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _distributed_worker(
    rank: int,
    world: int,
    rendezvous: str,
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    cohorts: torch.Tensor,
    results: dict,
) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world
    )
    try:
        n = z_a.shape[0] // world
        rows = slice(rank * n, (rank + 1) * n)
        out = {}
        for name, mask in (("plain", None), ("masked", cohorts[rows])):
            local_a = z_a[rows].clone().requires_grad_(True)
            local_b = z_b[rows].clone().requires_grad_(True)
            result = nt_xent_loss(local_a, local_b, 0.1, cohorts=mask)
            result.loss.backward()
            out[name] = (
                result.loss.detach(),
                local_a.grad,
                local_b.grad,
                result.positive_similarity,
            )
        results[rank] = out
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow  # spawning two interpreters with torch takes 10-20 s here
def test_two_process_loss_and_gradients_equal_single_process(tmp_path: Path) -> None:
    """Two gloo ranks give the single-process loss and gradients.

    float64 throughout, so the only difference is the order of a few dozen
    additions (the ranks' partial means, the gathered gradients): each within
    ~100 float64 ulps, far below the 1e-10 relative tolerance on any CPU or BLAS
    (float32 would leave ~1e-6, as large as a real bug in a small gradient).
    The ranks meet through a file, not a port that another process could take.
    """
    generator = torch.Generator().manual_seed(4)
    z_a = torch.randn(6, 5, generator=generator, dtype=torch.float64)
    z_b = torch.randn(6, 5, generator=generator, dtype=torch.float64)
    cohorts = torch.tensor([0, 1, 1, 0, 2, 1])
    world = 2
    manager = mp.get_context("spawn").Manager()
    results = manager.dict()
    mp.spawn(
        _distributed_worker,
        args=(world, str(tmp_path / "rendezvous"), z_a, z_b, cohorts, results),
        nprocs=world,
        join=True,
    )
    for name, mask in (("plain", None), ("masked", cohorts)):
        full_a = z_a.clone().requires_grad_(True)
        full_b = z_b.clone().requires_grad_(True)
        single = nt_xent_loss(full_a, full_b, 0.1, cohorts=mask).loss
        single.backward()
        per_rank = [results[r][name] for r in range(world)]
        # DDP averages the ranks' gradients, so the mean of the ranks' losses is the global loss.
        mean_loss = torch.stack([loss for loss, *_ in per_rank]).mean()
        assert mean_loss.dtype == torch.float64
        torch.testing.assert_close(mean_loss, single.detach(), rtol=1e-10, atol=1e-12)
        grad_a = torch.cat([grad for _, grad, _, _ in per_rank]) / world
        grad_b = torch.cat([grad for _, _, grad, _ in per_rank]) / world
        torch.testing.assert_close(grad_a, full_a.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grad_b, full_b.grad, rtol=1e-10, atol=1e-12)
