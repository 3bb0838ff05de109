"""``vertebral-fracture evaluate MODEL ...``: measure a network on held-out cases.

Each model registers from its own module, listed in :data:`MODELS`. A module exposes
``MODEL_NAME``, ``add_evaluate_arguments(parser)`` and ``evaluate_main(args) -> int`` (and
optionally ``EVALUATE_HELP``), importing torch lazily. Adding a model is one entry in the tuple.
"""

from __future__ import annotations

import argparse
import importlib

#: Modules providing ``evaluate`` sub-commands.
MODELS = ("VertebralFractureLib.spine.evaluate_centreline", "VertebralFractureLib.shape.evaluate",
          "VertebralFractureLib.voxelmap.evaluate", "VertebralFractureLib.radiograph.evaluate",
          "VertebralFractureLib.grading.evaluate",
          "VertebralFractureLib.keypoints.evaluate")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command with one sub-command per model."""
    parser = subparsers.add_parser("evaluate", help="evaluate a network on held-out cases and print a table")
    models = parser.add_subparsers(dest="model", metavar="MODEL")
    for name in MODELS:
        module = importlib.import_module(name)
        model_name = getattr(module, "MODEL_NAME", name.rsplit(".", 1)[-1].replace("evaluate_", ""))
        sub = models.add_parser(model_name, help=getattr(module, "EVALUATE_HELP", f"evaluate the {model_name} network"))
        module.add_evaluate_arguments(sub)
        sub.set_defaults(func=module.evaluate_main)
    parser.set_defaults(func=lambda args: _missing(parser))
    return parser


def _missing(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
