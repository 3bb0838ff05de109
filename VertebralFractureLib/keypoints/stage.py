"""The keypoint stage: vertebrae, six keypoints and levels on the mid-sagittal image (Pisov et al. 2020, §3.2).

The anchor detector proposes vertebral bodies with six keypoints on the straightened spine's virtual
mid-sagittal image; the level classifier names them (consecutive-order decoding after Gartland et al. 2025);
the points are mapped back to patient LPS millimetres.
"""

from __future__ import annotations

import numpy as np

from ..progress import Progress
from ..schema import SpineResult, Vertebra
from ..stage import Analysis, AnalysisOptions, StageContext

#: Keypoints closer than this (voxels) to the image border mean the vertebra is cut by the field of view.
EDGE_MARGIN_VOXELS = 1.0


def warn_no_vertebra(result: SpineResult) -> None:
    """Tell the user that nothing was found (a result without vertebrae is not a normal spine)."""
    result.warnings.append(f"{result.input.get('path', 'input image')}: no vertebra was found; "
                           "is the spine in view? (vertebrae can be added by hand in Slicer)")


def _cut_side(geometry, points: np.ndarray) -> str:
    """Which edge of the field of view the points cross ("superior edge", "posterior edge"...)."""
    index = geometry.lps_to_index(points)
    names = (("right", "left"), ("anterior", "posterior"), ("inferior", "superior"))
    sides = []
    for axis, (low, high) in enumerate(names):
        if np.any(index[:, axis] < EDGE_MARGIN_VOXELS):
            sides.append(low)
        if np.any(index[:, axis] > geometry.size[axis] - 1 - EDGE_MARGIN_VOXELS):
            sides.append(high)
    return " and ".join(sides or ["edge"]) + " edge"


class KeypointStage:
    """Vertebrae with six keypoints and level labels, in LPS mm."""

    name = "keypoints"
    title = "detecting vertebrae and keypoints"
    share = 0.4

    def enabled(self, options: AnalysisOptions) -> bool:
        """Runs whenever keypoints are wanted."""
        return options.keypoints

    def run(self, analysis: Analysis, context: StageContext, progress: Progress) -> None:
        """Append one :class:`Vertebra` per detection (cut ones not assessed) to the result; fill ``mid_points``."""
        from ..spine.stage import model_id
        from .detector import detect_vertebrae

        result = analysis.result
        straight = analysis.straightened
        progress(0.0, self.title)
        detections = detect_vertebrae(analysis.mid_sagittal, spacing_mm=straight.spacing, straightened=straight)
        result.models["keypoints"] = model_id("keypoints.pt")
        result.models["levels"] = model_id("keypoints_levels.pt")
        progress.check()
        geometry = analysis.canonical_geometry
        for detection in detections:
            points2d = np.asarray(detection.keypoints, dtype=float)
            points3d = straight.mid_sagittal_to_patient(points2d, order="col_row")
            centroid3d = straight.mid_sagittal_to_patient(points2d.mean(axis=0)[None], order="col_row")[0]
            vertebra = Vertebra(label=detection.label, centroid=centroid3d, keypoints=points3d,
                                confidence=float(min(detection.score, detection.label_confidence)), source="model")
            if not np.all(geometry.contains(points3d, margin=-EDGE_MARGIN_VOXELS)):
                vertebra.not_assessed(f"cut by the edge of the field of view ({_cut_side(geometry, points3d)})")
            result.vertebrae.append(vertebra)
            analysis.mid_points[vertebra.label] = points2d
        if not detections:
            warn_no_vertebra(result)
        progress(1.0, f"{len(detections)} vertebrae found")
