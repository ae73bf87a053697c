"""The ``cape`` command.

Each subcommand lives in its own module under :mod:`cape.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a function
taking the parsed ``argparse.Namespace`` and returning an exit code. Modules
are discovered, so adding a command never means editing this file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

import cape
import cape.commands
from cape.errors import CapeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cape",
        description=(
            "CAPE — patient-contrastive ECG foundation models with in-distribution "
            "batching: ingest clinical ECG formats, pretrain, embed, evaluate in and "
            "out of distribution."
        ),
    )
    parser.add_argument("--version", action="version", version=f"cape {cape.__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(cape.commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"cape.commands.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Warnings always show; -v adds info, -vv debug.
    level = logging.WARNING - 10 * min(int(args.verbose), 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CapeError as error:
        print(f"cape: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
