"""The ``vertebral-fracture`` command.

Each sub-command lives in its own module of this package and defines
``register(subparsers) -> argparse.ArgumentParser`` which sets ``func`` (a callable taking the
parsed arguments and returning an exit code) with ``set_defaults``. Heavy imports (torch,
SimpleITK) happen inside those functions, so ``--help`` and ``--version`` are instant.

Exit codes (README, "Exit codes and the write guarantee"): 0 done; 1 a case of a batch failed, or
an unexpected internal error; 2 bad input, a refused request (output exists, folder not writable,
in use) or a failed write; 130 interrupted (Ctrl-C). Every error is one line on stderr naming the
file and the problem; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import traceback
from typing import List, Optional

from .. import __version__
from ..nn.weights import WeightsError

#: Sub-command modules, in the order ``--help`` lists them.
SUBCOMMANDS = ("analyze", "batch", "measure", "synth", "train", "evaluate", "info")
#: The documented exit codes.
EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130
#: Argument names holding the input a command works on (named in messages that lack it).
INPUT_ARGUMENTS = ("input", "image", "folder", "mask")


class CommandError(Exception):
    """An error to show the user as one clear line (exit code 2), without a traceback."""


def plain_text(text: str) -> str:
    """A docstring as help text: RST roles and literals (``:func:`x```, double back-quotes) become plain words."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", text)


def error_message(error: BaseException) -> str:
    """One line for an exception: ``FILE: problem`` for an OSError, its message otherwise."""
    if isinstance(error, OSError) and error.strerror and not isinstance(error, (FileExistsError,)):
        name = error.filename
        if name is not None:
            return f"{name}: {error.strerror}" + (f" (-> {error.filename2})" if error.filename2 else "")
        if not error.args[1:] and str(error):
            return str(error)
        return error.strerror
    text = " ".join(str(error).split()) or type(error).__name__
    return text


def _subject(args: argparse.Namespace) -> Optional[str]:
    for name in INPUT_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="vertebral-fracture",
        description="Find, measure (Genant) and correct osteoporotic vertebral compression fractures "
        "in CT and lateral spine radiographs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        sub = importlib.import_module(f"{__name__}.{name}").register(subparsers)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show the full traceback of an error")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the console script; returns the exit code (see the module docstring)."""
    try:  # building the parser imports every sub-command's module: a Ctrl-C there is an interruption too
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("vertebral-fracture: interrupted before the command started; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_OK
    prefix = f"vertebral-fracture {args.command}"
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as interrupt:
        if debug:
            traceback.print_exc()
        detail = str(interrupt) or "stopped; outputs not written are absent, earlier outputs are unchanged"
        print(f"{prefix}: interrupted: {detail}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CommandError, WeightsError, ValueError, OSError) as error:
        if debug:
            traceback.print_exc()
        message = error_message(error)
        subject = _subject(args)
        if subject and not isinstance(error, WeightsError) and not _names_a_file(message, subject, args):
            message = f"{subject}: {message}"
        print(f"{prefix}: error: {message}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as error:  # noqa: BLE001 - an internal error still gets one line (and --debug)
        if debug:
            traceback.print_exc()
        subject = _subject(args)
        print(f"{prefix}: error: {subject + ': ' if subject else ''}internal error "
              f"{type(error).__name__}: {error_message(error)} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILED


def _names_a_file(message: str, subject: str, args: argparse.Namespace) -> bool:
    """Whether ``message`` already names the input or another path the command was given."""
    from pathlib import Path

    paths = [subject, Path(subject).name]
    for name in ("out", "segmentation", "body_mask"):
        value = getattr(args, name, None)
        if isinstance(value, str) and value:
            paths += [value, Path(value).name]
    return any(p and p in message for p in paths)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
