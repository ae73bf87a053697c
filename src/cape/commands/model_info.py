"""``cape model-info``: parameters and FLOPs of an encoder preset."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "model-info",
        help="print parameter counts and FLOPs of the encoder presets",
        description=(
            "Parameter counts and forward FLOPs (2 x multiply-adds of convolutions and "
            "dense layers) per 7 s view, and training FLOPs per patient pair (2 views x "
            "3 x forward), for an encoder preset or a pretraining config."
        ),
    )
    parser.add_argument(
        "--config", default=None, help="pretraining YAML or preset; default: every preset"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config setting, e.g. model.norm=group",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cape.models import describe_model
    from cape.pretrain.config import PRESET_NAMES, load_config

    sources = [args.config] if args.config else list(PRESET_NAMES)
    # Every config first: a bad one fails before the table starts.
    configs = [load_config(source, args.overrides) for source in sources]
    header = f"{'model':<12}{'encoder':>12}{'head':>10}{'GFLOP/view':>12}{'GFLOP/pair step':>17}  last map"
    print(header)
    for source, config in zip(sources, configs, strict=True):
        info = describe_model(
            config.encoder_spec(), config.model.projection_hidden_dim, config.model.projection_dim
        )
        channels, samples = info.feature_map
        print(
            f"{source!s:<12}{info.encoder_parameters:>12,}{info.head_parameters:>10,}"
            f"{info.flops_per_view / 1e9:>12.3f}{info.flops_per_pair_step / 1e9:>17.2f}"
            f"  {channels} x {samples}"
        )
    return 0
