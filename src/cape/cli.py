"""The ``cape`` command.

Each subcommand lives in its own module under :mod:`cape.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a function
taking the parsed ``argparse.Namespace`` and returning an exit code. Modules
are discovered, so adding a command never means editing this file: a module
that :data:`COMMAND_ORDER` does not name is listed after the known ones.

Command modules import only the standard library (and argparse-level helpers)
at the top; the work's imports (torch, pandas, scipy) happen inside ``func``,
so ``cape --help`` and a typo answer at once.
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

# Modules of cape.commands in workflow order (data in, pretraining, evaluation,
# whole studies, sharing); modules not named here follow in name order.
COMMAND_ORDER = (
    "simulate",
    "ingest",
    "split",
    "describe",
    "pretrain",
    "model_info",
    "embed",
    "evaluate",
    "identifiability",
    "retrieval",
    "report",
    "study",
    "demo",
    "export",
)


def command_modules() -> list[str]:
    """Names of the modules in :mod:`cape.commands`, known ones in workflow order first."""
    found = {
        info.name
        for info in pkgutil.iter_modules(cape.commands.__path__)
        if not info.name.startswith("_")
    }
    known = [name for name in COMMAND_ORDER if name in found]
    return known + sorted(found - set(known))


class HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default only when it says something.

    ``argparse.ArgumentDefaultsHelpFormatter`` appends ``(default: None)`` to
    options without a default and ``(default: False)`` to flags; this one
    leaves out None, False, empty lists and defaults the help text already
    states.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or "default" in text.lower()
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
            or isinstance(action, argparse._CountAction)
            or not (action.option_strings or action.nargs in ("?", "*"))
        ):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"

    def _format_text(self, text: str) -> str:
        # argparse %-formats help strings but a description only if it holds %(prog):
        # "CODE-15%%" written for the one shows up literally in the other.
        if "%(prog)" not in text:
            text = text.replace("%%", "%")
        return super()._format_text(text)


def _use_formatter(parser: argparse.ArgumentParser) -> None:
    # Every command's parser, whatever formatter its module chose, gets one way of
    # showing defaults.
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _use_formatter(subparser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cape",
        description=(
            "CAPE — patient-contrastive ECG foundation models with in-distribution "
            "batching: ingest clinical ECG formats, pretrain, embed, evaluate in and "
            "out of distribution. Commands are listed in workflow order; "
            "`cape COMMAND --help` explains each."
        ),
    )
    parser.add_argument("--version", action="version", version=f"cape {cape.__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in command_modules():
        module = importlib.import_module(f"cape.commands.{name}")
        module.register(subparsers)
    _use_formatter(parser)
    return parser


def print_error(error: BaseException) -> None:
    """``cape: error: ...`` once per line of the message (a check may report several)."""
    for line in str(error).splitlines() or [""]:
        print(f"cape: error: {line}", file=sys.stderr)


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
        print_error(error)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
