"""Which way a lateral radiograph faces, and mapping an analysis of the mirrored picture back onto it.

A lateral spine film is taken left or right lateral and displayed either way; exports do not say which. The
models read the picture with the patient's front on the left (column 0 anterior, as the CT's straightened
mid-sagittal image). Given the other way, the detector's boxes fail the 2D gate's position check (they lie in
the front part of the trunk as the gate reads it) and the analysis found no vertebra on a real slice mirrored.
:func:`choose_facing` keeps the facing whose analysis shows the better spine column: one seeded by three
bone-confirmed bodies before a faint one (:func:`~VertebralFractureLib.radiograph.gate2d.faint_column`), then the
more vertebrae that are in the column with a bright endplate rim and discs (the 2D gate's ``column`` and ``bone``
checks), then the one with a sacral anchor. The picture is mirrored only when the detector agrees: more of its
detections are confident (objectness >= 0.9) in the mirrored picture. Either cue alone misleads: on a view collimated
within the trunk (no skin outline for the position check) the mirrored picture can give a few bone-confirmed
boxes in a line when the picture as given gave none (1 of 24 generated views), and on 4 of the 20 real slices
as given the detector is more confident of the mirror; measured on those views, the two together never chose
the wrong facing.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

#: The two facings: the patient's front on the left (the models' convention) or on the right of the picture.
FACINGS: Tuple[str, ...] = ("left", "right")


def column_evidence(result) -> Tuple[int, int, int]:
    """(1 unless the column is faint, bone-confirmed column members, 1 when the levels are anchored on the sacrum).

    Members count when they are in the column and pass the bone check. A faint column
    (:func:`~VertebralFractureLib.radiograph.gate2d.faint_column`: fewer than three bone-confirmed bodies in a
    chain, kept for its regular spacing) ranks below any column seeded by three bone-confirmed bodies.
    """
    bodies = sum(1 for v in result.vertebrae
                 if v.checks.get("column", 0.0) >= 0.5 and v.checks.get("bone", 0.0) >= 0.5)
    return (int(not result.input.get("faint_column", False)), bodies,
            int(result.patient.get("levels", {}).get("anchor") is not None))


def choose_facing(results: Dict[str, object], confident: Dict[str, int]) -> str:
    """The facing whose analysis shows the better spine column.

    Args:
        results: facing -> SpineResult of the analyses that found vertebrae (a failed one is missing: no
            column evidence).
        confident: facing -> number of confident detections (objectness >= 0.9), known also for a failed
            analysis.

    Returns:
        "left" (the picture as given) unless "right" shows more column evidence (:func:`column_evidence`) and
        more confident detections than "left" -- also when "left" found nothing (the caller then reports
        that, rather than a mirrored column the detector doubts).
    """
    if "right" not in results:
        return "left"
    evidence = {side: column_evidence(results[side]) if side in results else (0, 0, 0) for side in FACINGS}
    if evidence["right"] > evidence["left"] and confident.get("right", 0) > confident.get("left", 0):
        return "right"
    return "left"


def _mirror_points(points, width: int) -> np.ndarray:
    mirrored = np.array(points, dtype=np.float64, copy=True)
    mirrored[..., 0] = (width - 1) - mirrored[..., 0]
    return mirrored


def mirror_analysis(analysis, image: np.ndarray) -> None:
    """Map an analysis of ``image[:, ::-1]`` back onto ``image`` (in place): every column, the shown images.

    Keypoints keep their names (the anterior points stay the anterior ones, now on the right), so heights, G
    and grades are unchanged.
    """
    from .analyze import display_image

    width = int(image.shape[1])
    result = analysis.result
    for vertebra in result.vertebrae:
        vertebra.keypoints = _mirror_points(vertebra.keypoints, width)
        vertebra.centroid = _mirror_points(vertebra.centroid, width)
    analysis.mid_points = {label: _mirror_points(points, width) for label, points in analysis.mid_points.items()}
    for rejected in result.input.get("rejected_detections", []):
        rejected["centre"][0] = round((width - 1) - float(rejected["centre"][0]), 1)
    for centroid in result.input.get("level_centroids", {}).values():
        centroid[0] = round((width - 1) - float(centroid[0]), 2)
    levels = result.patient.get("levels", {})
    if levels.get("l5") is not None:
        old = levels["l5"]
        new = [round((width - 1) - float(old[0]), 1), old[1]]
        levels["reason"] = str(levels.get("reason", "")).replace(f"({old[0]:.0f}, {old[1]:.0f}) px",
                                                                 f"({new[0]:.0f}, {new[1]:.0f}) px")
        levels["l5"] = new
    analysis.image = image
    analysis.mid_sagittal = display_image(image)
