"""Tests that kill mutmut's surviving mutants of cape.losses (docs/testing.md).

Mutant names are mutmut 3.8.1's (``scripts/mutation.sh losses``); each docstring names the
mutants the test kills and the bug they stand for. The distributed branch is tested in one
process: ``cape.dist``'s rank / world size / gather functions are replaced by a fake "rank 1
of 2" whose other rank holds fixed projections, and the loss is compared with a textbook
float64 reference over the global batch.
"""

from __future__ import annotations

import pytest
import torch

from cape import dist
from cape.losses import NTXentLoss, nt_xent_loss

torch.set_num_threads(1)


def reference_rank_loss(
    global_a: torch.Tensor,
    global_b: torch.Tensor,
    own_rows: range,
    temperature: float,
    cohorts: list[int] | None = None,
) -> float:
    """Textbook NT-Xent of the views of ``own_rows`` against the whole global batch (float64)."""
    n = global_a.shape[0]
    views = torch.nn.functional.normalize(torch.cat([global_a, global_b]).double(), dim=1)
    labels = (cohorts + cohorts) if cohorts is not None else [0] * (2 * n)
    anchors = [*own_rows, *(n + i for i in own_rows)]
    total = 0.0
    for i in anchors:
        partner = (i + n) % (2 * n)
        denominator = sum(
            torch.exp(views[i] @ views[k] / temperature).item()
            for k in range(2 * n)
            if k != i and labels[k] == labels[i]
        )
        total -= (views[i] @ views[partner] / temperature).item() - torch.log(
            torch.tensor(denominator, dtype=torch.float64)
        ).item()
    return total / len(anchors)


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(
        4, 6, generator=g, dtype=torch.float64
    )


class FakeRank1Of2:
    """Rank 1 of a 2-process group whose rank 0 holds ``other_a``, ``other_b``, ``other_cohorts``."""

    def __init__(self, other_a: torch.Tensor, other_b: torch.Tensor, other_cohorts: torch.Tensor):
        self.others = [other_a, other_b]
        self.other_cohorts = other_cohorts
        self.gathers = 0

    def gather_with_grad(self, tensor: torch.Tensor) -> torch.Tensor:
        other = self.others[self.gathers]
        self.gathers += 1
        other = torch.nn.functional.normalize(other.to(tensor.dtype), dim=1)
        return torch.cat([other, tensor])

    def gather_no_grad(self, tensor: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.other_cohorts, tensor])

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(dist, "world_size", lambda: 2)
        monkeypatch.setattr(dist, "rank", lambda: 1)
        monkeypatch.setattr(dist, "gather_with_grad", self.gather_with_grad)
        monkeypatch.setattr(dist, "gather_no_grad", self.gather_no_grad)


def make_fake(n: int, d: int) -> FakeRank1Of2:
    g = torch.Generator().manual_seed(1)
    return FakeRank1Of2(
        torch.randn(n, d, generator=g, dtype=torch.float64),
        torch.randn(n, d, generator=g, dtype=torch.float64),
        torch.tensor([0, 1, 1, 0][:n]),
    )


def test_default_temperature_is_one_tenth(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Kills x_nt_xent_loss__mutmut_1 and xǁNTXentLossǁ__init____mutmut_1 (default 0.1 -> 1.1):
    the documented default temperature silently changing."""
    z_a, z_b = pair
    expected = reference_rank_loss(z_a, z_b, range(4), 0.1)
    assert nt_xent_loss(z_a, z_b).loss.item() == pytest.approx(expected, rel=1e-12)
    assert NTXentLoss()(z_a, z_b).loss.item() == pytest.approx(expected, rel=1e-12)


def test_module_forwards_its_temperature_and_gather_flag(
    pair: tuple[torch.Tensor, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills xǁNTXentLossǁ__init____mutmut_2/6/7 and xǁNTXentLossǁforward__mutmut_1..10: the
    module dropping or swapping its temperature, cohorts or gather flag on the way to
    nt_xent_loss (default gather_distributed True)."""
    z_a, z_b = pair
    cohorts = torch.tensor([0, 1, 1, 0])
    loss = NTXentLoss(temperature=0.5)
    assert loss.temperature == 0.5
    assert loss.gather_distributed is True
    direct = nt_xent_loss(z_a, z_b, 0.5, cohorts, True)
    assert torch.equal(loss(z_a, z_b, cohorts).loss, direct.loss)
    assert torch.equal(loss(z_a, z_b, cohorts).negative_similarity, direct.negative_similarity)
    fake = make_fake(4, 6)
    fake.install(monkeypatch)
    gathered = NTXentLoss(temperature=0.5)(z_a, z_b, cohorts).loss.item()
    assert fake.gathers == 2
    assert gathered == pytest.approx(
        reference_rank_loss(
            torch.cat([fake.others[0], z_a]),
            torch.cat([fake.others[1], z_b]),
            range(4, 8),
            0.5,
            [0, 1, 1, 0, 0, 1, 1, 0],
        ),
        rel=1e-12,
    )
    local = NTXentLoss(temperature=0.5, gather_distributed=False)(z_a, z_b, cohorts).loss.item()
    assert local == pytest.approx(
        reference_rank_loss(z_a, z_b, range(4), 0.5, [0, 1, 1, 0]), rel=1e-12
    )


@pytest.mark.parametrize("bad", [0.0, -0.1])
def test_non_positive_temperature_is_rejected_with_its_value(
    pair: tuple[torch.Tensor, torch.Tensor], bad: float
) -> None:
    """Kills x_nt_xent_loss__mutmut_10 (``<= 0`` -> ``< 0``: temperature 0 divides by zero) and
    x_nt_xent_loss__mutmut_12 (the message dropped)."""
    z_a, z_b = pair
    with pytest.raises(ValueError, match=f"temperature must be positive, got {bad}"):
        nt_xent_loss(z_a, z_b, temperature=bad)
    with pytest.raises(ValueError, match=f"temperature must be positive, got {bad}"):
        NTXentLoss(temperature=bad)


def test_module_accepts_temperatures_below_one() -> None:
    """Kills xǁNTXentLossǁ__init____mutmut_4 (``<= 0`` -> ``<= 1``: the default 0.1 refused)."""
    assert NTXentLoss(temperature=0.07).temperature == 0.07


def test_cohort_shape_error_names_the_batch_size() -> None:
    """Kills x_nt_xent_loss__mutmut_18: the message quoting the projection width (shape[1])
    instead of the batch size the cohorts must match."""
    z = torch.zeros(3, 5)
    with pytest.raises(ValueError, match=r"cohorts must be \(3,\), got \(2,\)"):
        nt_xent_loss(z, z, cohorts=torch.tensor([0, 1]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_are_computed_in_float32(dtype: torch.dtype) -> None:
    """Kills x_nt_xent_loss__mutmut_22/32/39 (the float32 promotion dropped for one or both
    views): a half-precision loss, or a dtype mismatch in the similarity matmul."""
    g = torch.Generator().manual_seed(2)
    z_a, z_b = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    out = nt_xent_loss(z_a.to(dtype), z_b.to(dtype), 0.2)
    assert out.loss.dtype == torch.float32
    # Same value as the float32 loss of the rounded inputs: the computation itself is float32.
    again = nt_xent_loss(z_a.to(dtype).float(), z_b.to(dtype).float(), 0.2)
    assert torch.equal(out.loss, again.loss)


@pytest.mark.parametrize("with_cohorts", [False, True])
def test_rank_1_of_2_uses_the_global_batch_and_its_own_rows(
    pair: tuple[torch.Tensor, torch.Tensor], monkeypatch: pytest.MonkeyPatch, with_cohorts: bool
) -> None:
    """Kills x_nt_xent_loss__mutmut_2/41/44/45/46/47/48/49/69/73/91/92/93: under a process
    group the negatives must be the gathered global batch (not gathering, gathering the wrong
    tensor, or gathering by default=False), and this rank's self/positive columns must sit at
    offset rank * n (offset dropped, divided, or subtracted from n_global)."""
    z_a, z_b = pair
    fake = make_fake(4, 6)
    fake.install(monkeypatch)
    cohorts = torch.tensor([1, 0, 1, 1]) if with_cohorts else None
    out = nt_xent_loss(z_a, z_b, 0.3, cohorts)
    assert fake.gathers == 2
    labels = [0, 1, 1, 0, 1, 0, 1, 1] if with_cohorts else None
    expected = reference_rank_loss(
        torch.cat([fake.others[0], z_a]), torch.cat([fake.others[1], z_b]), range(4, 8), 0.3, labels
    )
    assert out.loss.item() == pytest.approx(expected, rel=1e-12)
    # The positive pairs are this rank's own: their similarity does not involve rank 0's rows.
    za, zb = (torch.nn.functional.normalize(t, dim=1) for t in (z_a, z_b))
    assert out.positive_similarity.item() == pytest.approx(
        (za * zb).sum(dim=1).mean().item(), rel=1e-12
    )


def test_no_gather_when_asked_not_to_even_under_a_process_group(
    pair: tuple[torch.Tensor, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills x_nt_xent_loss__mutmut_42 (``and`` -> ``or``): gather_distributed=False ignored."""
    z_a, z_b = pair
    fake = make_fake(4, 6)
    fake.install(monkeypatch)
    out = nt_xent_loss(z_a, z_b, 0.3, gather_distributed=False)
    assert fake.gathers == 0
    assert out.loss.item() == pytest.approx(reference_rank_loss(z_a, z_b, range(4), 0.3), rel=1e-12)
