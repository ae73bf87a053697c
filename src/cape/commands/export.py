"""``cape export``: an encoder as model.safetensors + config.json (+ model.onnx) for others."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write an encoder as model.safetensors + config.json (+ ONNX) for sharing",
        description=(
            "Write a pretrained encoder into a folder in the layout Hugging Face users know: "
            "model.safetensors (the state_dict), config.json (architecture, signal contract: "
            "leads, rate, window, units, preprocessing; training provenance) and a short "
            "README.md. cape.load_encoder(FOLDER) reads it back; docs/api.md shows how to load "
            "it with plain PyTorch. --format onnx adds model.onnx (needs the export extra)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "source", type=Path, help="run directory, checkpoint .pt, encoder.safetensors or export"
    )
    parser.add_argument("--out", required=True, type=Path, help="folder to write")
    parser.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=["safetensors", "onnx"],
        help="repeatable; safetensors + config.json are always written, onnx adds model.onnx",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cape.export import export_encoder_folder

    formats = tuple(args.formats or ["safetensors"])
    out = export_encoder_folder(args.source, args.out, formats)
    written = sorted(p.name for p in out.iterdir())
    print(f"encoder exported to {out}: {', '.join(written)}")
    return 0
