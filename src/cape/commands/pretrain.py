"""``cape pretrain``: patient-contrastive pretraining of an ECG encoder."""

from __future__ import annotations

import argparse
import json
import os

from cape.errors import CapeError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain an ECG encoder on a cohort store (CAPE, random or IDB batches)",
        description=(
            "Patient-contrastive pretraining: two ECGs of one patient are a positive "
            "pair, every other ECG in the batch a negative. Settings come from a YAML "
            "file or a preset (paper, small) and --set key=value overrides (dotted keys, "
            "YAML values, e.g. --set model.norm=group --set cohorts=[a,b]). Runs under "
            "`torchrun --nproc_per_node=N -m cape pretrain ...` as well (DDP)."
        ),
    )
    parser.add_argument(
        "--config", default=None, help="YAML config file or preset name (paper, small)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting (repeatable)",
    )
    parser.add_argument("--store", default=None, help="cohort store (same as --set store=PATH)")
    parser.add_argument("--out", default=None, help="run directory (same as --set out_dir=DIR)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in the run directory"
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cape.pretrain import load_config, pretrain

    overrides = list(args.overrides)
    if args.store is not None:
        overrides.append(f"store={args.store}")
    if args.out is not None:
        overrides.append(f"out_dir={args.out}")
    config = load_config(args.config, overrides)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    if config.store is None:
        raise CapeError("no store given: use --store PATH or --set store=PATH")
    run_dir = pretrain(config, resume=args.resume)
    # The process group is gone by now; torchrun's RANK says who should print.
    if os.environ.get("RANK", "0") == "0":
        print(f"pretraining finished: {run_dir}")
    return 0
