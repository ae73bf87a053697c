"""The encoder's ``1 x k`` ``Conv2d`` computes what ``nn.Conv1d`` computes (float64).

``cape.models.resnet`` runs every 1-D convolution as a ``1 x k`` 2-D
convolution on channels-last ``(batch, channels, 1, samples)`` activations,
for speed (``benchmarks/bench_model.py --compare conv`` measures it). These
tests pin that the arithmetic is the 1-D convolution's:

* per layer, with a rigorous bound: two float64 evaluations of the same sum
  of ``n`` products each lie within ``gamma_n * (|W| * |x|)`` of the exact
  value (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
  eq. 3.5; ``gamma_n = n u / (1 - n u)``, ``u = 2**-53``), so they differ by
  at most ``2 gamma_n (|W| * |x|)`` elementwise, where ``|W| * |x|`` is the
  1-D convolution of the absolute values;
* for the whole encoder, against ``bench_model.conv1d_twin`` (the same network
  built from ``Conv1d``/``BatchNorm1d``/``MaxPool1d``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cape.models import ResNet1dEncoder, encoder_spec
from cape.models.resnet import EncoderSpec, conv_1xk

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_model.py"
UNIT_ROUNDOFF = 2.0**-53


def _bench_model():
    spec = importlib.util.spec_from_file_location("bench_model", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gamma(n: int) -> float:
    return n * UNIT_ROUNDOFF / (1 - n * UNIT_ROUNDOFF)


def _assert_conv_matches_conv1d(conv: nn.Conv2d, x: torch.Tensor) -> None:
    """``conv`` on ``(b, c, 1, L)`` channels-last vs ``F.conv1d`` on ``(b, c, L)``, float64."""
    weight = conv.weight.detach().double().squeeze(2)
    stride, padding = conv.stride[1], conv.padding[1]  # type: ignore[index]
    x = x.double()
    with torch.no_grad():
        got = conv.double()(x.unsqueeze(2).contiguous(memory_format=torch.channels_last))
        expected = F.conv1d(x, weight, stride=stride, padding=padding)
        magnitude = F.conv1d(x.abs(), weight.abs(), stride=stride, padding=padding)
    assert got.shape[2] == 1
    got = got.squeeze(2)
    assert got.shape == expected.shape
    n_terms = weight.shape[1] * weight.shape[2]
    # 2 gamma_n for the two evaluations; (1 + 2 gamma_n) covers the rounding of `magnitude`.
    bound = 2 * _gamma(n_terms) * (1 + 2 * _gamma(n_terms)) * magnitude
    excess = (got - expected).abs() - bound
    assert excess.max() <= 0, f"exceeds the rounding bound by {excess.max():.3g}"


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "kernel", "stride", "length"),
    [(8, 16, 17, 1, 2800), (16, 32, 17, 4, 2800), (32, 48, 17, 4, 701), (48, 64, 1, 1, 44)],
)
def test_conv_1xk_equals_conv1d_within_the_rounding_bound(
    in_channels: int, out_channels: int, kernel: int, stride: int, length: int
) -> None:
    """Bug caught: a 1 x k convolution that pads, strides or orders taps differently
    from ``Conv1d`` (e.g. ``padding=k // 2`` on the wrong axis, stride on the unit
    axis, a transposed weight): errors of order 1, against a bound of ~1e-12."""
    torch.manual_seed(0)
    conv = conv_1xk(in_channels, out_channels, kernel, stride)
    x = torch.randn(3, in_channels, length, dtype=torch.float64)
    _assert_conv_matches_conv1d(conv, x)
    out = conv(torch.randn(1, in_channels, 1, length, dtype=torch.float64))
    assert out.shape[-1] == -(-length // stride)


@pytest.mark.parametrize("preset", ["small", "paper"])
def test_every_convolution_of_the_encoder_is_its_conv1d(preset: str) -> None:
    """Each Conv2d of the encoder (stem, both convs of each block, 1x1 skips), fed the
    activations it sees in a real forward pass, is within the bound of ``Conv1d``.

    Bug caught: a layer built outside ``conv_1xk`` with a 2-D kernel or padding (it
    would mix the unit axis in, or shift the signal)."""
    torch.manual_seed(1)
    encoder = ResNet1dEncoder(encoder_spec(preset, input_samples=700)).double().eval()
    inputs: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(
            lambda m, args, out, name=name: inputs.__setitem__(name, args[0].squeeze(2))
        )
        for name, module in encoder.named_modules()
        if isinstance(module, nn.Conv2d)
    ]
    with torch.no_grad():
        encoder(torch.randn(2, 8, 700, dtype=torch.float64))
    for hook in hooks:
        hook.remove()
    convs = dict(
        (name, module) for name, module in encoder.named_modules() if isinstance(module, nn.Conv2d)
    )
    assert len(convs) == 1 + 2 * len(encoder.spec.block_channels) + len(encoder.spec.block_channels)
    for name, conv in convs.items():
        assert conv.kernel_size[0] == 1 and conv.padding[0] == 0 and conv.stride[0] == 1, name  # type: ignore[index]
        _assert_conv_matches_conv1d(conv, inputs[name])


@pytest.mark.parametrize(
    "spec",
    [
        encoder_spec("small", input_samples=2800),
        EncoderSpec(
            stem_channels=8,
            block_channels=(12, 16),
            input_samples=333,
            norm="group",
            pooling="flatten",
            feature_dim=10,
        ),
    ],
    ids=["small-batchnorm-avg", "groupnorm-flatten"],
)
def test_encoder_equals_its_conv1d_twin(spec: EncoderSpec) -> None:
    """The whole encoder (eval mode, float64) against the Conv1d-built network that
    ``bench_model.py`` times it against, so the benchmark compares equal functions.

    Bug caught: the twin (or the encoder) wiring the skip path, pooling or flatten
    order differently -- the features would differ by O(1). Tolerance 1e-12 of the
    largest feature: each convolution's rounding is below ~6e-13 of its |W||x|
    (n <= 80 x 17 taps here, gamma_n as above) and eval-mode batch norm at
    initialisation is the identity up to 1/sqrt(1 + 1e-5); observed ~1e-16.
    """
    torch.manual_seed(2)
    encoder = ResNet1dEncoder(spec)
    bench = _bench_model()
    difference = bench.max_feature_difference(encoder, batch=3)
    encoder = encoder.double().eval()
    with torch.no_grad():
        scale = float(encoder(torch.randn(3, 8, spec.input_samples).double()).abs().max())
    assert scale > 0
    assert difference <= 1e-12 * scale
