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

**The trunk's outline has the last word against mirroring** (:func:`column_place`): the spine lies in the posterior
half of the trunk. Where the picture shows the trunk's outline at the column's rows (its skin in front and behind),
the picture is mirrored only when the mirrored analysis's column lies in the front half of the picture as given, read
on the picture itself with the patient starting just above the background, fat included (:func:`trunk_threshold`).
On exports of the real sagittal slices windowed for soft tissue (-160 ... 240 HU) Otsu's threshold lies between fat
and muscle, the 2D gate's outline runs along the fat inside the trunk, and the two cues above chose the mirror on 4
of the 12 lumbar slices (anterior and posterior keypoints swapped).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

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


#: :func:`column_place`: the spine's centre lies in the posterior half of the trunk (relative place from the anterior
#: skin over 0.5): real T8-L3 at 0.63-0.72, T1-T4 at 0.38-0.65 of the neck's or the chest's depth (docs/findings.md,
#: the position check); the median over the column is taken.
FRONT_HALF = 0.5


def trunk_threshold(image: np.ndarray) -> float:
    """The value above which a picture shows the patient, fat included, for :func:`column_place`.

    A picture whose darkest value holds at least :data:`~.gate2d.CLIPPED_BACKGROUND_SHARE` of it (an export that
    clipped the air there; the air around the trunk is 11-47 % of the 20 real sagittal slices):
    just above that value, whatever its window does to the fat. Otherwise Otsu's threshold (below the fat on a CT
    slice in HU with its air unclipped: -440 ... -520 HU). Otsu's threshold lies between fat and muscle on exports
    windowed for soft tissue (-160 ... 240 HU, -125 ... 225 HU), and the trunk's outline then runs along the fat inside
    it. A CT slice whose scanner clipped the air at -1024 HU (the 20 real slices) is read the first way too: the air's
    noise lies above the clipped value, the outline reaches the picture's edges and gives no place (no veto; the two
    cues chose right on all of them).
    """
    from .gate2d import CLIPPED_BACKGROUND_SHARE, otsu_threshold

    image = np.asarray(image, dtype=np.float64)
    darkest, brightest = float(image.min()), float(image.max())
    if brightest > darkest and float(np.mean(image <= darkest)) >= CLIPPED_BACKGROUND_SHARE:
        return darkest + (brightest - darkest) / 510.0  # half an 8-bit grey step above it
    return otsu_threshold(image)


def column_place(image: np.ndarray, centres: Sequence[Sequence[float]], threshold: float) -> Optional[float]:
    """Median relative place of the body centres ``[column, row]`` from the left edge of the trunk (0) to the right (1).

    The trunk along a centre's row is the run of :func:`~.gate2d.patient_outline` (``image`` above ``threshold``,
    air inside the patient filled) through it; a run that reaches the picture's edge (a view collimated within the
    trunk) or a centre outside the patient gives no place. None when no centre has one.
    """
    from .gate2d import patient_outline

    outline = patient_outline(np.asarray(image, dtype=np.float64), threshold)
    places = []
    for column, row in centres:
        line = outline[int(np.clip(round(row), 0, outline.shape[0] - 1))]
        col = int(np.clip(round(column), 0, line.size - 1))
        if not line[col]:
            continue
        outside = np.flatnonzero(~line)
        left = outside[outside < col]
        right = outside[outside > col]
        if left.size == 0 or right.size == 0:
            continue
        places.append((column - left[-1]) / max(right[0] - left[-1], 1))
    return float(np.median(places)) if places else None


def choose_facing(results: Dict[str, object], confident: Dict[str, int],
                  place: Optional[float] = None) -> str:
    """The facing whose analysis shows the better spine column.

    Args:
        results: facing -> SpineResult of the analyses that found vertebrae (a failed one is missing: no
            column evidence).
        confident: facing -> number of confident detections (objectness >= 0.9), known also for a failed
            analysis.
        place: where the mirrored analysis's column lies in the trunk of the picture as given
            (:func:`column_place`; None: not known).

    Returns:
        "left" (the picture as given) unless "right" shows more column evidence (:func:`column_evidence`) and
        more confident detections than "left" -- also when "left" found nothing (the caller then reports
        that, rather than a mirrored column the detector doubts) -- and its column does not lie in the posterior
        half of the trunk as given (``place`` over :data:`FRONT_HALF`).
    """
    if "right" not in results or (place is not None and place > FRONT_HALF):
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
