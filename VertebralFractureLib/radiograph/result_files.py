"""Outputs of a radiograph analysis (kept for callers of ``write_radiograph_outputs``).

The one output writer is :func:`VertebralFractureLib.export.outputs.write_outputs`, which writes
a radiograph result (frame ``"pixel"``) as ``results.json``, ``genant.csv``, ``keypoints.csv``
(2D points), ``overview.png`` (the radiograph with an automatic window) and ``report.html``.
"""

from __future__ import annotations

from ..export.outputs import RADIOGRAPH_OUTPUT_FILES as OUTPUT_FILES
from ..export.outputs import write_outputs as write_radiograph_outputs

__all__ = ["OUTPUT_FILES", "write_radiograph_outputs"]
