"""Encoder architecture, presets and FLOP counting."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cape.models import (
    PRESETS,
    ContrastiveModel,
    EncoderSpec,
    ResNet1dEncoder,
    count_parameters,
    describe_model,
    encoder_spec,
    forward_flops,
    group_count,
)

torch.set_num_threads(1)


def block_lengths(encoder: ResNet1dEncoder, samples: int) -> list[int]:
    lengths: list[int] = []
    hooks = [
        block.register_forward_hook(lambda _m, _i, out: lengths.append(out[0].shape[-1]))
        for block in encoder.blocks
    ]
    encoder.eval()
    with torch.no_grad():
        encoder(torch.zeros(1, 8, samples))
    for hook in hooks:
        hook.remove()
    return lengths


@pytest.mark.parametrize("samples", [2800, 2799, 2801, 4096, 1000, 257])
def test_every_block_divides_length_by_stride_rounding_up(samples: int) -> None:
    spec = encoder_spec("small", input_samples=samples)
    lengths = block_lengths(ResNet1dEncoder(spec), samples)
    expected, length = [], samples
    for _ in range(4):
        length = -(-length // 4)
        expected.append(length)
    assert lengths == expected
    assert spec.feature_map_length() == expected[-1]


def test_paper_encoder_shapes_and_post_relu_features() -> None:
    torch.manual_seed(0)
    encoder = ResNet1dEncoder(PRESETS["paper"]).eval()
    with torch.no_grad():
        features = encoder(torch.randn(2, 8, 2800))
    assert features.shape == (2, 256)
    assert (features >= 0).all()
    assert encoder.dense.in_features == 320 * 11
    with pytest.raises(ValueError, match="2800 samples"):
        encoder(torch.randn(1, 8, 2000))
    with pytest.raises(ValueError, match="batch, 8"):
        encoder(torch.randn(1, 12, 2800))


def test_small_preset_pools_and_accepts_any_length() -> None:
    encoder = ResNet1dEncoder(PRESETS["small"]).eval()
    with torch.no_grad():
        assert encoder(torch.randn(3, 8, 1234)).shape == (3, 64)


def test_parameter_count_matches_hand_formula() -> None:
    spec = PRESETS["small"]
    k = spec.kernel_size
    expected = spec.n_leads * spec.stem_channels * k + 2 * spec.stem_channels  # conv + BN
    channels = spec.stem_channels
    for out in spec.block_channels:
        expected += channels * out * k + out * out * k + 2 * 2 * out  # two convs, two BNs
        expected += channels * out if channels != out else 0  # 1x1 skip conv
        channels = out
    expected += channels * spec.feature_dim + spec.feature_dim  # dense (avg pooling)
    assert count_parameters(ResNet1dEncoder(spec)) == expected


def test_flops_of_single_layers_match_formula() -> None:
    conv = nn.Conv1d(8, 16, 17, stride=4, padding=8, bias=False)
    out_len = math.ceil(2800 / 4)
    assert forward_flops(conv, (1, 8, 2800)) == 2 * 8 * 17 * 16 * out_len
    assert forward_flops(nn.Linear(10, 7), (3, 10)) == 2 * 10 * 7 * 3


def test_paper_flops_match_hand_count() -> None:
    spec = PRESETS["paper"]
    k, length = spec.kernel_size, spec.input_samples
    flops = 2 * spec.n_leads * spec.stem_channels * k * length
    channels = spec.stem_channels
    for out in spec.block_channels:
        flops += 2 * channels * out * k * length  # conv1 at the input length
        length = math.ceil(length / 4)
        flops += 2 * out * out * k * length + 2 * channels * out * length  # conv2 + 1x1 skip
        channels = out
    flops += 2 * channels * length * spec.feature_dim
    flops += 2 * (256 * 256 + 256 * 128)  # projection head
    info = describe_model(spec)
    assert info.flops_per_view == flops
    assert info.flops_per_pair_step == 6 * flops
    assert 2.5e9 < info.flops_per_view < 2.8e9  # the measured ~2.6 GFLOP of the design notes


def test_group_norm_switch_makes_samples_independent_of_batch() -> None:
    """With group norm a sample's output does not depend on the rest of the batch.

    float64, so the only difference between batch sizes is the convolution
    kernel's summation order (another BLAS/oneDNN path for another batch):
    rounding of a few thousand products per output, ~1e-13 relative, far below
    the 1e-9 tolerance on any CPU. (In float32 the same rounding is ~1e-6,
    the size of the default tolerance.) Batch norm differs by O(1).
    """
    torch.manual_seed(0)
    spec = encoder_spec("small", norm="group", dropout=0.0)
    encoder = ResNet1dEncoder(spec).double().train()
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in encoder.modules())
    x = torch.randn(4, 8, 300, dtype=torch.float64)
    alone = encoder(x[:1])
    together = encoder(x)[:1]
    torch.testing.assert_close(alone, together, rtol=1e-9, atol=1e-12)
    batch_norm = ResNet1dEncoder(encoder_spec("small", dropout=0.0)).double().train()
    assert not torch.allclose(batch_norm(x[:2])[:1], batch_norm(x)[:1])


@pytest.mark.parametrize("channels", [16, 32, 48, 80, 128, 196, 256, 320])
def test_group_count_divides(channels: int) -> None:
    groups = group_count(channels)
    assert channels % groups == 0 and 1 <= groups <= 32
    assert all(channels % g for g in range(groups + 1, 33))


def test_spec_round_trip_and_validation() -> None:
    spec = encoder_spec("paper", norm="group", dropout=0.1)
    assert EncoderSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="odd"):
        EncoderSpec(kernel_size=16)
    with pytest.raises(ValueError, match="unknown model preset"):
        encoder_spec("huge")
    with pytest.raises(ValueError, match="unknown encoder fields"):
        encoder_spec("small", width=3)
    with pytest.raises(ValueError, match="unknown encoder spec keys"):
        EncoderSpec.from_dict({"colour": 1})


def test_contrastive_model_projects() -> None:
    model = ContrastiveModel(ResNet1dEncoder(PRESETS["small"]), None, 32)
    assert model.head.layers[0].in_features == 64 and model.head.layers[0].out_features == 64
    assert model(torch.randn(2, 8, 800)).shape == (2, 32)
