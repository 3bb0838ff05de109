"""``vertebral-fracture evaluate MODEL ...``: measure a network on held-out cases.

Each model registers from its own module, listed in :data:`MODELS`. A module exposes
``MODEL_NAME``, ``add_evaluate_arguments(parser)`` and ``evaluate_main(args) -> int`` (and
optionally ``EVALUATE_HELP``), importing torch lazily. Adding a model is one entry in the tuple.
"""

from __future__ import annotations

import argparse

from .train import register_models

#: Modules providing ``evaluate`` sub-commands.
MODELS = ("VertebralFractureLib.training.centreline.evaluate", "VertebralFractureLib.training.abnormality.evaluate",
          "VertebralFractureLib.training.voxelmap.evaluate", "VertebralFractureLib.training.radiograph.evaluate",
          "VertebralFractureLib.training.grading.evaluate",
          "VertebralFractureLib.training.keypoints.evaluate")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command with one sub-command per model."""
    return register_models(subparsers, "evaluate", "evaluate a network on held-out cases and print a table", MODELS,
                           "evaluate")
