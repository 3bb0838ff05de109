"""``vertebral-fracture train MODEL ...``: train one of the project's networks.

Each model registers from its own module, listed in :data:`MODELS`. A module exposes
``MODEL_NAME`` (the sub-sub-command, e.g. ``"centreline"``), ``add_train_arguments(parser)`` and
``train_main(args) -> int``; an optional ``TRAIN_HELP`` string gives the one-line help. Modules are
imported when the parser is built, so they must import torch lazily (inside functions). Adding a
model is one entry in the tuple.
"""

from __future__ import annotations

import argparse
import importlib

#: Modules providing ``train`` sub-commands.
MODELS = ("VertebralFractureLib.training.centreline.train", "VertebralFractureLib.training.abnormality.train",
          "VertebralFractureLib.training.voxelmap.train", "VertebralFractureLib.training.radiograph.train",
          "VertebralFractureLib.training.radiograph.train_keypoints",
          "VertebralFractureLib.training.radiograph.train_fracture",
          "VertebralFractureLib.training.radiograph.train_lumbosacral", "VertebralFractureLib.training.grading.train",
          "VertebralFractureLib.training.keypoints.train")


def register_models(subparsers, command: str, help_text: str, modules, verb: str) -> argparse.ArgumentParser:
    """Add ``command`` with one sub-command per model module (shared by ``train`` and ``evaluate``).

    Args:
        subparsers: the top-level sub-parsers.
        command: ``"train"`` or ``"evaluate"``.
        help_text: the command's one-line help.
        modules: module names; each exposes ``MODEL_NAME``, ``add_<verb>_arguments(parser)``,
            ``<verb>_main(args)`` and optionally ``<VERB>_HELP``.
        verb: ``"train"`` or ``"evaluate"``.
    """
    parser = subparsers.add_parser(command, help=help_text)
    models = parser.add_subparsers(dest="model", metavar="MODEL")
    for name in modules:
        module = importlib.import_module(name)
        model_name = getattr(module, "MODEL_NAME", name.rsplit(".", 1)[-1].replace(f"{verb}_", ""))
        description = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None
        sub = models.add_parser(model_name, description=description,
                                help=getattr(module, f"{verb.upper()}_HELP", f"{verb} the {model_name} network"))
        getattr(module, f"add_{verb}_arguments")(sub)
        sub.set_defaults(func=getattr(module, f"{verb}_main"))
    parser.set_defaults(func=lambda args: _missing(parser))
    return parser


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` sub-command with one sub-command per model."""
    return register_models(subparsers, "train", "train a network (centre-line, keypoints, ...)", MODELS, "train")


def _missing(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
