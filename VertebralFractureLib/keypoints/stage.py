"""The keypoint stage: vertebrae, six keypoints and levels on the mid-sagittal image (Pisov et al. 2020, §3.2).

The anchor detector proposes vertebral bodies with six keypoints on the straightened spine's virtual
mid-sagittal image; the level classifier names them (consecutive-order decoding after Gartland et al. 2025);
the points are mapped back to patient LPS millimetres, refined on the CT's own voxels body by body
(:func:`.refine.refine_on_ct`), and on thick slices neighbouring bodies whose facing endplate points cross are
made to meet (:mod:`.facing_endplates`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..genant import KEYPOINT_NAMES, genant_index, heights
from ..progress import Progress
from ..schema import LEVEL_CERTAIN_KEY, SpineResult, Vertebra
from ..stage import Analysis, RunsWithKeypoints, StageContext

#: Keypoints closer than this (voxels) to the image border mean the vertebra is cut by the field of view.
EDGE_MARGIN_VOXELS = 1.0
#: Refine the detector's keypoints on the CT's own voxels (:func:`.refine.refine_on_ct`, any voxel size:
#: on thick slices it takes the centre of the merged endplate band, see :func:`.refine.endplate_edge`)
#: instead of snapping them on the 1 mm detector image (:func:`.refine.refine_endplates`).
REFINE_ON_CT = True
#: ``Vertebra.extra`` key listing the keypoints (:data:`~VertebralFractureLib.genant.KEYPOINT_NAMES`) that the CT
#: refinement put on their endplate's traced line because their own column showed another edge
#: (:func:`.refine.endplate_line`): estimates, so a height loss measured with them is withheld by the quality stage.
LINE_PLACED_KEY = "keypoints_on_endplate_line"
#: ``Vertebra.extra`` key: the keypoints (name -> overlap, mm) that crossed a neighbouring body's facing points on
#: thick slices, moved to meet them where the crossing lies within one band (:mod:`.facing_endplates`): a height loss
#: measured with them is withheld.
CROSSED_KEY = "keypoints_crossing_neighbour"
#: ``Vertebra.extra`` key: the body's Genant G (Pisov et al. 2020, min / max of its three heights) from its own
#: refined points, before crossed points were made to meet (:data:`CROSSED_KEY`); the quality stage withholds a grade
#: that differs between the two.
CROSSED_G_KEY = "G_before_crossed_points_met"


#: Length along the spine needed to assess one vertebra: a body is 20-30 mm high (Panjabi et al. 1991,
#: 1992) and its two endplates must be seen with the discs beyond them (about 5-10 mm each).
MIN_COVERAGE_MM = 45.0


def coverage_message(length_mm: float) -> Optional[str]:
    """A sentence about a scan too short along the spine to hold one whole vertebra, else None."""
    if length_mm >= MIN_COVERAGE_MM:
        return None
    return (f"the scan covers {length_mm:.0f} mm along the spine; about {MIN_COVERAGE_MM:.0f} mm are needed to "
            "assess one vertebra (a vertebral body with the discs above and below)")


def warn_no_vertebra(result: SpineResult, length_mm: Optional[float] = None) -> None:
    """Tell the user that nothing was found (a result without vertebrae is not a normal spine).

    Args:
        result: the result to warn in.
        length_mm: the scan's length along the spine, when known: a short scan is named as the reason.
    """
    where = result.input.get("path", "input image")
    short = coverage_message(length_mm) if length_mm is not None else None
    if short is not None:
        result.warnings.append(f"{where}: no vertebra was found: {short}")
        return
    result.warnings.append(f"{where}: no vertebra was found; "
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


#: Turn each body's points in the coronal plane onto the line of its neighbours' centres before the CT refinement
#: (:mod:`.column_tilt`; False: the straightened spine's plane, as before 2026-12-06).
COLUMN_TILT = True
#: On thick slices, move the facing endplate points of neighbouring bodies that cross each other until they meet
#: (:mod:`.facing_endplates`; False: each body as its own refinement left it, as before 2026-12-06).
SEPARATE_CROSSING = True


def _turned_to_column(ct, detections: list, detected3d: list) -> list:
    """The detected points turned onto their neighbours' line (:func:`.column_tilt.turned_to_column`)."""
    from .column_tilt import turned_to_column

    order = sorted(range(len(detections)), key=lambda i: float(np.mean(np.asarray(detections[i].keypoints)[:, 1])))
    out = list(detected3d)
    for i, points in zip(order, turned_to_column(ct, [detected3d[i] for i in order])):
        out[i] = points
    return out


class KeypointStage(RunsWithKeypoints):
    """Vertebrae with six keypoints and level labels, in LPS mm."""

    name = "keypoints"
    title = "detecting vertebrae and keypoints"
    share = 0.4

    def run(self, analysis: Analysis, context: StageContext, progress: Progress) -> None:
        """Append one :class:`Vertebra` per detection (cut ones not assessed) to the result; fill ``mid_points``."""
        from ..spine.stage import model_id
        from .detector import detect_vertebrae

        result = analysis.result
        straight = analysis.straightened
        progress(0.0, self.title)
        from .facing_endplates import separate_crossing_endplates
        from .refine import reading_ct, refine_on_ct

        ct = analysis.ct_for_models()  # bone cement read as dense bone (a treated body keeps its place and outline)
        on_ct = REFINE_ON_CT and ct is not None
        levels: dict = {}
        detections = detect_vertebrae(straight.mid_sagittal(), spacing_mm=straight.spacing, straightened=straight,
                                      refine=False if on_ct else None, ct=ct,
                                      level_report=levels)
        if detections and levels:
            result.patient["levels"] = levels
            if not levels["certain"]:
                result.warnings.append(levels["method"])
        result.models["keypoints"] = model_id("keypoints.pt")
        result.models["levels"] = model_id("keypoints_levels.pt")
        progress.check()
        geometry = analysis.canonical_geometry
        detected3d = [straight.mid_sagittal_to_patient(np.asarray(d.keypoints, dtype=float), order="col_row")
                      for d in detections]
        if on_ct and COLUMN_TILT:
            detected3d = _turned_to_column(ct, detections, detected3d)
        # the CT as the refinement reads it around the bodies: finer than 1 mm low-passed to it (refine.reading_ct);
        # the detector's own checks (keypoints/chain.py) keep the CT as it is
        reading = reading_ct(ct, np.concatenate(detected3d)) if on_ct and detected3d else None
        placements: list = [[] for _ in detections]
        crossings: list = []
        starts = list(detected3d)
        if on_ct:
            detected3d = [refine_on_ct(reading, points3d, line_placed=placed)
                          for points3d, placed in zip(detected3d, placements)]
        own = detected3d  # each body's points as its own refinement left them
        if on_ct and SEPARATE_CROSSING:
            detected3d = separate_crossing_endplates(detected3d, geometry, crossed=crossings)
        for index, (detection, points3d, placed) in enumerate(zip(detections, detected3d, placements)):
            points2d = np.asarray(detection.keypoints, dtype=float)
            if on_ct:
                points2d = straight.patient_to_mid_sagittal(points3d)[0][:, ::-1]  # (row, col) -> [col, row]
            centroid3d = straight.mid_sagittal_to_patient(points2d.mean(axis=0)[None], order="col_row")[0]
            # the refinement may move the points off the straightened plane onto the body's own mid-sagittal
            # plane (refine.body_midplane): the centroid goes with them
            in_plane = straight.mid_sagittal_to_patient(points2d, order="col_row")
            centroid3d = centroid3d + (points3d - in_plane).mean(axis=0)
            vertebra = Vertebra(label=detection.label, centroid=centroid3d, keypoints=points3d,
                                confidence=float(min(detection.score, detection.label_confidence)), source="model")
            if not detection.level_certain:  # counted past a gap that fits no single number of missed levels
                vertebra.extra[LEVEL_CERTAIN_KEY] = False
            if placed:  # estimated from the endplate's line, not from their own column (refine.endplate_line)
                vertebra.extra[LINE_PLACED_KEY] = [KEYPOINT_NAMES[i] for i in placed]
            if crossings and crossings[index]:  # crossed a neighbour's facing points (facing_endplates)
                vertebra.extra[CROSSED_KEY] = {KEYPOINT_NAMES[i]: round(overlap, 2)
                                               for i, overlap in sorted(crossings[index].items())}
                vertebra.extra[CROSSED_G_KEY] = round(float(genant_index(heights(own[index]))), 4)
            if not np.all(geometry.contains(points3d, margin=-EDGE_MARGIN_VOXELS)):
                vertebra.not_assessed(f"cut by the edge of the field of view ({_cut_side(geometry, points3d)})")
            result.vertebrae.append(vertebra)
            analysis.mid_points[vertebra.label] = points2d
            if on_ct:
                analysis.detected_points[vertebra.label] = np.asarray(starts[index], dtype=float)
        uncounted = [d.label for d in detections if not d.level_certain]
        if uncounted and levels.get("certain"):
            # "levels uncertain": dropped once a reader sets a level by hand (mrml/editing.py anchored_by_hand)
            result.warnings.append(f"levels uncertain past a gap: {', '.join(uncounted)} (counted from the "
                                   f"{levels['anchor']} across a gap with no body found that fits no single number of "
                                   "missed levels); check them")
        if not detections:
            warn_no_vertebra(result, float(analysis.canonical_geometry.extent_mm[2]))
        progress(1.0, f"{len(detections)} vertebrae found")
