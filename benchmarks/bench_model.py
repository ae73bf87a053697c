"""Encoder training step on the CPU: the two choices behind CAPE's model defaults.

* ``conv``: :class:`cape.models.ResNet1dEncoder` runs its 1-D convolutions as
  ``1 x k`` ``nn.Conv2d`` on channels-last ``(batch, channels, 1, samples)``
  activations. The reference is the same network built from ``nn.Conv1d``,
  ``BatchNorm1d`` and ``MaxPool1d`` (:func:`conv1d_twin`) with the *same*
  weights; the run first checks that both give the same features (float64,
  eval mode) before timing them.
* ``threads``: the ``conv2d`` encoder with ``torch.set_num_threads(1)`` vs
  ``(2)`` (``cape pretrain``'s ``threads`` setting). What two threads buy
  depends on the cores that other processes leave free, so the load average is
  printed with the result.

A timed step is forward, NT-Xent loss on the two halves of the batch, backward
and an Adam step (no projection head, no data loading: pre-made tensors).
Every repeat times both settings, in alternating order; the gain is the median
of the per-repeat ratios of wall-clock ECG/s, with their range.

    python benchmarks/bench_model.py --preset small --repeats 5
    python benchmarks/bench_model.py --compare conv --preset paper --batch 8 --steps 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cape.losses import NTXentLoss
from cape.models import ResNet1dEncoder, encoder_spec


class Conv1dTwin(nn.Module):
    """:class:`ResNet1dEncoder`'s network built from 1-D layers, on ``(batch, channels, L)``.

    Built by :func:`conv1d_twin`; the layer order and arithmetic follow
    ``ResNet1dEncoder.forward`` and ``ResidualBlock1d.forward`` exactly.
    """

    def __init__(self, encoder: ResNet1dEncoder) -> None:
        super().__init__()
        spec = encoder.spec
        self.pooling = spec.pooling
        self.stem_conv = _conv1d(encoder.stem[0])
        self.stem_norm = _norm1d(encoder.stem[1])
        self.blocks = nn.ModuleList()
        for block in encoder.blocks:
            twin = nn.Module()
            twin.conv1 = _conv1d(block.conv1)
            twin.norm1 = _norm1d(block.norm1)
            twin.conv2 = _conv1d(block.conv2)
            twin.norm2 = _norm1d(block.norm2)
            twin.dropout = nn.Dropout(spec.dropout)
            skip: list[nn.Module] = []
            for layer in block.skip.children() if isinstance(block.skip, nn.Sequential) else []:
                if isinstance(layer, nn.MaxPool2d):
                    size = layer.kernel_size[1]  # type: ignore[index]
                    skip.append(nn.MaxPool1d(size, stride=size, ceil_mode=True))
                else:
                    skip.append(_conv1d(layer))
            twin.skip = nn.Sequential(*skip)
            self.blocks.append(twin)
        self.dense = nn.Linear(encoder.dense.in_features, encoder.dense.out_features)
        self.dense.load_state_dict(encoder.dense.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_leads, samples)`` -> ``(batch, feature_dim)``."""
        x = F.relu(self.stem_norm(self.stem_conv(x)))
        carry = x
        for block in self.blocks:
            carry = block.skip(carry)
            x = block.dropout(F.relu(block.norm1(block.conv1(x))))
            x = block.conv2(x) + carry
            carry = x
            x = block.dropout(F.relu(block.norm2(x)))
        x = x.flatten(1) if self.pooling == "flatten" else x.mean(dim=2)
        return F.relu(self.dense(x))


def _conv1d(conv: nn.Conv2d) -> nn.Conv1d:
    """The ``nn.Conv1d`` with ``conv``'s weights (``(out, in, 1, k)`` -> ``(out, in, k)``)."""
    twin = nn.Conv1d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size[1],
        stride=conv.stride[1],
        padding=conv.padding[1],  # type: ignore[index]
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        twin.weight.copy_(conv.weight.squeeze(2))
        if conv.bias is not None:
            twin.bias.copy_(conv.bias)
    return twin


def _norm1d(norm: nn.Module) -> nn.Module:
    if isinstance(norm, nn.BatchNorm2d):
        twin: nn.Module = nn.BatchNorm1d(norm.num_features)
    elif isinstance(norm, nn.GroupNorm):
        twin = nn.GroupNorm(norm.num_groups, norm.num_channels)
    else:  # pragma: no cover - make_norm builds only these two
        raise TypeError(f"unexpected norm layer {type(norm).__name__}")
    twin.load_state_dict(norm.state_dict())
    return twin


def conv1d_twin(encoder: ResNet1dEncoder) -> Conv1dTwin:
    """A copy of ``encoder`` made of ``Conv1d`` layers, same weights and buffers."""
    return Conv1dTwin(encoder).to(dtype=encoder.dense.weight.dtype)


def max_feature_difference(encoder: ResNet1dEncoder, batch: int = 4, seed: int = 0) -> float:
    """Max |conv2d features - Conv1d twin features| in float64, eval mode."""
    generator = torch.Generator().manual_seed(seed)
    encoder = encoder.double().eval()
    twin = conv1d_twin(encoder).eval()
    x = torch.randn(batch, encoder.spec.n_leads, encoder.spec.input_samples, generator=generator)
    with torch.no_grad():
        difference = (encoder(x.double()) - twin(x.double())).abs().max()
    encoder.float()
    return float(difference)


def make_step(model: nn.Module) -> Callable[[torch.Tensor], None]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = NTXentLoss(0.1)

    def step(views: torch.Tensor) -> None:
        n = views.shape[0] // 2
        features = model(views)
        out = loss_fn(features[:n], features[n:])
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()

    return step


def ecgs_per_second(step: Callable[[torch.Tensor], None], views: torch.Tensor, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step(views)
    return steps * views.shape[0] / (time.perf_counter() - start)


def compare(
    name: str,
    settings: dict[str, tuple[Callable[[torch.Tensor], None], int]],
    views: torch.Tensor,
    steps: int,
    repeats: int,
) -> None:
    """Time the two settings (step function, torch threads) alternately; print the ratio."""
    reference, variant = settings
    rates: dict[str, list[float]] = {reference: [], variant: []}
    for step, threads in settings.values():  # warm-up: allocator, oneDNN kernels
        torch.set_num_threads(threads)
        ecgs_per_second(step, views, 1)
    for repeat in range(repeats):
        order = [reference, variant] if repeat % 2 == 0 else [variant, reference]
        for label in order:
            step, threads = settings[label]
            torch.set_num_threads(threads)
            rates[label].append(ecgs_per_second(step, views, steps))
    ratios = [v / r for r, v in zip(rates[reference], rates[variant], strict=True)]
    load = os.getloadavg()
    print(
        f"  {name:<8} {reference:<22} {statistics.median(rates[reference]):8.1f} ECG/s | "
        f"{variant:<22} {statistics.median(rates[variant]):8.1f} ECG/s | "
        f"ratio {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}), "
        f"load {load[0]:.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=["small", "paper"])
    parser.add_argument("--batch", type=int, default=64, help="ECGs per step (2 views/patient)")
    parser.add_argument("--steps", type=int, default=3, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed pairs per comparison")
    parser.add_argument(
        "--compare", nargs="+", default=["conv", "threads"], choices=["conv", "threads"]
    )
    parser.add_argument("--quick", action="store_true", help="tiny batch, 1 step (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.steps, args.repeats = 4, 1, 1
    torch.manual_seed(0)
    encoder = ResNet1dEncoder(encoder_spec(args.preset, input_samples=2800)).train()
    difference = max_feature_difference(encoder)
    twin = conv1d_twin(encoder).train()
    views = torch.randn(args.batch, 8, 2800)
    load = os.getloadavg()
    print(
        f"torch {torch.__version__}, preset {args.preset}, batch {args.batch} ECGs, "
        f"{args.steps} step(s) x {args.repeats} repeats; {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"  conv2d 1xk vs Conv1d twin, float64 features: max |difference| {difference:.2e}")
    if difference > 1e-9:
        raise SystemExit("the Conv1d twin does not compute the encoder's function")
    if "conv" in args.compare:
        settings = {
            "Conv1d (reference)": (make_step(twin), 1),
            "conv2d 1xk (CAPE)": (make_step(encoder), 1),
        }
        compare("conv", settings, views, args.steps, args.repeats)
    if "threads" in args.compare:
        step = make_step(encoder)
        settings = {"1 thread (CAPE)": (step, 1), "2 threads": (step, 2)}
        compare("threads", settings, views, args.steps, args.repeats)
    print("ratio = second / first setting's ECG/s (wall clock), median over repeats")


if __name__ == "__main__":
    main()
