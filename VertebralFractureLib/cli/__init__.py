"""The ``vertebral-fracture`` command.

Each sub-command lives in its own module of this package and defines
``register(subparsers) -> argparse.ArgumentParser`` which sets ``func`` (a callable taking the
parsed arguments and returning an exit code) with ``set_defaults``. Heavy imports (torch,
SimpleITK) happen inside those functions, so ``--help`` and ``--version`` are instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from .. import __version__
from ..nn.weights import WeightsError

#: Sub-command modules, in the order ``--help`` lists them.
SUBCOMMANDS = ("analyze", "batch", "measure", "synth", "train", "evaluate", "info")


class CommandError(Exception):
    """An error to show the user as one clear line (exit code 2), without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="vertebral-fracture",
        description="Find, measure (Genant) and correct osteoporotic vertebral compression fractures "
        "in CT and lateral spine radiographs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("vertebral-fracture: interrupted", file=sys.stderr)
        return 130
    except (CommandError, WeightsError, ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"vertebral-fracture {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
