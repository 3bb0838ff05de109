"""Lateral radiographs: level centroids T4-L4 (Gartland et al. 2025), keypoints (Pisov et al. 2020, §6), Genant.

Modules:
    io: ``read_radiograph`` (PNG / JPEG / DICOM with pixel spacing), ``is_radiograph`` (2D input?).
    columns, views: generated long-spine DRRs cut into Gartland et al. 2025-style overlapping, partly labelled views.
    transform, network, model, losses, batches, train: the Gartland et al. 2025 U-Net (13 heatmaps, 264 x 264
        input or native resolution), its four losses (appendix B) and training.
    locate, metrics, evaluate, figures: ``locate_levels``, Gartland et al. 2025, Table 1 metrics, sample figure.
    keypoint_data, train_keypoints: the Pisov et al. 2020 detector trained on radiographs (Pisov et al. 2020, §6).
    labels, spacing, analyze: level labels for detected vertebrae, pixel-size estimate,
        ``analyze_radiograph`` (same ``Analysis`` / ``results.json`` as a CT, frame ``"pixel"``).

Nothing here imports torch at module load.
"""

from __future__ import annotations

from typing import Any

__all__ = ["analyze_radiograph", "is_radiograph", "locate_levels", "read_radiograph"]


def __getattr__(name: str) -> Any:
    if name in ("read_radiograph", "is_radiograph"):
        from . import reading as io

        return getattr(io, name)
    if name == "locate_levels":
        from .locate import locate_levels

        return locate_levels
    if name == "analyze_radiograph":
        from .analyze import analyze_radiograph

        return analyze_radiograph
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
