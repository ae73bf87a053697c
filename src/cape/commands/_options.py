"""Options several commands share: lists of cohorts and splits, counts that must be positive.

Not a command (the leading underscore keeps :mod:`cape.cli` from registering it).
Standard library only: every command module imports it when ``cape --help`` runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any


class NamesAction(argparse.Action):
    """Collects names given as ``--cohort a --cohort b``, ``--cohort a b`` or ``--cohort a,b``.

    Every form adds to one list (``None`` when the option is not given), so the
    older space- and comma-separated spellings keep working beside the
    repeatable one.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        items = [values] if isinstance(values, str) else list(values or [])
        names = [name.strip() for item in items for name in str(item).split(",")]
        if not all(names):
            parser.error(f"argument {option_string}: empty name in {' '.join(map(str, items))!r}")
        self.check(parser, option_string, names)
        current = getattr(namespace, self.dest, None) or []
        setattr(namespace, self.dest, [*current, *names])

    def check(
        self, parser: argparse.ArgumentParser, option_string: str | None, names: list[str]
    ) -> None:
        """Reject names that cannot be right (any name may be a cohort)."""


SPLITS = ("train", "val", "test")


class SplitNamesAction(NamesAction):
    """:class:`NamesAction` for split names: only train, val and test exist."""

    def check(
        self, parser: argparse.ArgumentParser, option_string: str | None, names: list[str]
    ) -> None:
        from cape.errors import did_you_mean

        for name in names:
            if name not in SPLITS:
                parser.error(
                    f"argument {option_string}: unknown split {name!r}"
                    f"{did_you_mean(name, SPLITS)}; splits are {', '.join(SPLITS)}"
                )


def add_cohort_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--cohort NAME`` (repeatable, or ``a,b``); ``--cohorts A B`` still works. Dest: cohorts."""
    parser.add_argument(
        "--cohort",
        "--cohorts",
        dest="cohorts",
        action=NamesAction,
        nargs="+",
        metavar="NAME",
        help=f"{help_text}; repeat the option or separate names with commas",
    )


def add_split_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--split NAME`` (repeatable, or ``a,b``); ``--splits A B`` works too. Dest: split."""
    parser.add_argument(
        "--split",
        "--splits",
        dest="split",
        action=SplitNamesAction,
        nargs="+",
        metavar="NAME",
        help=f"{help_text}; repeat the option or separate names with commas",
    )


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer ``>= minimum`` (argparse names the option on error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def fraction(text: str) -> float:
    """An argparse ``type``: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value
