"""argparse as the command line uses it: a mistake in the flags is one line (its usage block
is what --help is for), and a command that passes the flags it does not know on to another
(`statewriter kratix`, to `push` or `delete`) gets them instead of a refusal."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from app.cli.exits import UsageError

PASSES_ON = "passes_on"  # set (`set_defaults(passes_on=True)`) by a command that takes them


class OneLineParser(argparse.ArgumentParser):
    """argparse whose mistakes are one line: a UsageError, told where `main` tells errors."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """`parser.parse_args(argv)`, except that the flags and arguments a command that passes
    them on does not know are its `passed_on` (in their order), not a mistake."""
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, PASSES_ON, False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.passed_on = unknown
    return args
