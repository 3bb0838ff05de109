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
MODELS = ("VertebralFractureLib.spine.train_centreline", "VertebralFractureLib.shape.train",
          "VertebralFractureLib.voxelmap.train", "VertebralFractureLib.radiograph.train",
          "VertebralFractureLib.radiograph.train_keypoints", "VertebralFractureLib.grading.train",
          "VertebralFractureLib.keypoints.train")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` sub-command with one sub-command per model."""
    parser = subparsers.add_parser("train", help="train a network (centre-line, keypoints, ...)")
    models = parser.add_subparsers(dest="model", metavar="MODEL")
    for name in MODELS:
        module = importlib.import_module(name)
        model_name = getattr(module, "MODEL_NAME", name.rsplit(".", 1)[-1].replace("train_", ""))
        sub = models.add_parser(model_name, help=getattr(module, "TRAIN_HELP", f"train the {model_name} network"),
                                description=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None)
        module.add_train_arguments(sub)
        sub.set_defaults(func=module.train_main)
    parser.set_defaults(func=lambda args: _missing(parser))
    return parser


def _missing(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
