"""Vertebrae, six keypoints and levels on the mid-sagittal image (Pisov et al. 2020, §3.2; Gartland et al. 2025).

Modules (numpy-only unless marked torch; torch is imported lazily everywhere the CLI loads):
    anchors: anchor shapes (scales 17-35 mm, aspect ratios width/height 0.8-2), IoU, eq. 2 encoding.
    targets: objectness / encoded-keypoint targets (Pisov et al. 2020, Fig. 3), level heatmaps and Gartland et al.
    2025 L2 layer weights.
    losses (torch): Pisov et al. 2020, eq. 3 and Gartland et al. 2025, appendix B loss L2.
    network (torch): the U-Net region-proposal network (stride 4) and the 4 mm level-heatmap U-Net.
    nms: non-maximum suppression on keypoint boxes, with keypoint voting.
    chain: weaker detections (and a laterally averaged second look) that continue the chain of confident
        ones at the level spacing and that the CT shows as vertebrae (quality-gate bone and canal checks).
    labelling: joint consecutive level labels (Viterbi over the C7 ... S1 level graph, T13 / L6 handled).
    levelfeatures: 3D level cues from the straightened CT (rib / pelvis bone bands per row, vertebral size).
    levelnet (torch): per-vertebra level classifier on those cues, the emission scores of ``labelling``;
        shipped weights ``weights/keypoints_levels.pt`` (used when the straightened volume is given).
    refine: end-plate snapping of the keypoints (fractured end plates; on by default for the CT weights).
    model: :class:`KeypointModel` (both nets + settings), shipped weights ``weights/keypoints.pt``.
    detector: :func:`detect_vertebrae` (image -> detections with keypoints, score, label, confidence).
    result: detections -> :class:`~VertebralFractureLib.schema.SpineResult` in LPS via the straightening.
    sample, dataset, batches, drawn: training data (generated cases, annotated real CTs, VerSe CT + mask +
        centroids, drawn test spines).
    train, evaluate, metrics: ``vertebral-fracture train|evaluate keypoints`` and Pisov et al. 2020, Tables 1-2 figures.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Detection", "KeypointModel", "detect_vertebrae", "load_model", "result_from_detections"]


def __getattr__(name: str) -> Any:
    """Lazy access to the main entry points (keeps ``import VertebralFractureLib.keypoints`` light)."""
    if name in ("Detection", "detect_vertebrae"):
        from . import detector

        return getattr(detector, name)
    if name in ("KeypointModel", "load_model"):
        from . import model

        return getattr(model, name)
    if name == "result_from_detections":
        from .result import result_from_detections

        return result_from_detections
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
