"""``cape embed``: features of a store's ECGs from a pretrained (or untrained) encoder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cape.commands._options import (
    add_cohort_option,
    add_split_option,
    non_negative_int,
    positive_int,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "embed",
        help="compute features of a store's ECGs with a pretrained encoder",
        description=(
            "Run an encoder over a store's ECGs (the central 7 s window, or the mean over "
            "several windows) and write features.npy + index.parquet (ids, cohort, split, "
            "labels) + embed.json (provenance). Deterministic."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="run directory, .pt or .safetensors"
    )
    parser.add_argument("--store", required=True, type=Path, help="cohort store")
    parser.add_argument("--out", required=True, type=Path, help="features directory")
    parser.add_argument(
        "--untrained",
        action="store_true",
        help="the encoder's randomly initialised twin (baseline)",
    )
    add_cohort_option(parser, "only these cohorts (default: all)")
    add_split_option(parser, "only these splits (default: all)")
    parser.add_argument(
        "--windows", type=positive_int, default=1, help="7 s windows per ECG (features averaged)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=64, help="ECGs per forward pass")
    parser.add_argument(
        "--workers", type=non_negative_int, default=0, help="DataLoader worker processes"
    )
    parser.add_argument(
        "--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from cape.embed import EmbedSettings, embed_store
    from cape.errors import CapeError

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise CapeError(f"--device {device}: this torch sees no CUDA device; use cpu or auto")
    settings = EmbedSettings(
        n_windows=args.windows, batch_size=args.batch_size, num_workers=args.workers
    )
    out = embed_store(
        args.checkpoint,
        args.store,
        args.out,
        untrained=args.untrained,
        cohorts=args.cohorts,
        splits=args.split,
        settings=settings,
        device=device,
        progress=not args.no_progress,
    )
    print(f"features written to {out}")
    return 0
