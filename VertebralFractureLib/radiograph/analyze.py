"""Analysis of one lateral radiograph: levels (Gartland et al. 2025), keypoints (Pisov et al. 2020, §6), Genant.

Stages: read and check -> level heatmaps T4 ... L4 (004 U-Net) -> pixel size (the file's, with where it
came from: DICOM Pixel Spacing, Imager Pixel Spacing over the magnification factor, Imager Pixel Spacing at
the detector plane, :mod:`.reading`; none: heights in pixels and a detector scale search) -> vertebrae with six
keypoints (the Pisov et al. 2020, §3.2 detector run on the radiograph itself, Pisov et al. 2020, §6) -> the 2D
quality gate (:mod:`.gate2d`) -> a level for each vertebra (heatmap scores + consecutive order, :mod:`.labels`)
-> heights ha, hm, hp and G (``SpineResult`` frame ``"pixel"``; in mm, or in pixels as ``heights_px`` with
``height_unit: "pixel"``, :func:`label_height_units`). The returned
:class:`~VertebralFractureLib.pipeline.Analysis` has the radiograph as its ``mid_sagittal`` image and the 2D
keypoints as ``mid_points``, so :func:`VertebralFractureLib.export.outputs.write_outputs` writes the same files
as for a CT.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..progress import Progress
from ..schema import LEVEL_CERTAIN_KEY, SpineResult, Vertebra
from ..stage import Analysis
from ..validation import InputError, check_radiograph
from .reading import FROM_CALLER, FROM_VOLUME_HEADER, NO_PIXEL_SIZE, PixelSize, padding_as_air
from .view_plane import LATERAL, header_view, not_lateral, read_header_view

PathLike = Union[str, Path]
#: The overview export windows images for CT (HU -250 ... 1250); the radiograph is shown through
#: a copy stretched onto that window (1st-99.5th percentile), so the exports need no change.
DISPLAY_WINDOW = (-250.0, 1250.0)
#: A detection whose centre lies farther than this (mm) from the spine line through its
#: neighbours is dropped (false positives in the soft tissues in front of the spine).
OFF_SPINE_MM = 30.0
_KEYPOINT_CACHE: dict = {}
#: End-plate refinement for radiographs (:func:`refine_detections`): the parameters of
#: :func:`VertebralFractureLib.keypoints.refine.refine_endplates`, applied on the radiograph
#: resampled to 1 mm (the CT tuning ran it on the detector's 2 mm grid, i.e. with every length
#: doubled). Chosen on 28 training views (14 columns, the first 6 the detector's validation
#: columns) and confirmed on 60 others, never on the held-out views: fracture sensitivity at
#: G <= 0.8 0.00 -> 0.64 / 0.66, specificity 1.00 -> 0.87 / 0.85, mean |G error| unchanged.
RADIOGRAPH_REFINE = {"search_mm": 2.5, "offset_mm": 1.0, "inset_mm": 0.5, "sigma_mm": 0.5}
#: Whether the heights are measured on each endplate traced across its body (:func:`measured_keypoints`).
RADIOGRAPH_TRACE = True


def on_spine(centres: np.ndarray, pixel_mm: Tuple[float, float], limit_mm: float = OFF_SPINE_MM,
             neighbours: int = 4) -> np.ndarray:
    """(n,) bool: detections near the spine line (median column of the nearest detections by row).

    Args:
        centres: (n, 2) ``[column, row]`` detection centres.
        pixel_mm: (column_mm, row_mm).
        limit_mm: largest allowed antero-posterior distance from the line.
        neighbours: detections on each side (by row) that define the line locally.

    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    n = len(centres)
    if n < 3:
        return np.ones(n, dtype=bool)
    order = np.argsort(centres[:, 1])
    keep = np.ones(n, dtype=bool)
    for rank, index in enumerate(order):
        window = order[max(0, rank - neighbours) : rank + neighbours + 1]
        window = window[window != index]
        line = float(np.median(centres[window, 0]))
        keep[index] = abs(centres[index, 0] - line) * pixel_mm[0] <= limit_mm
    return keep


def load_keypoint_model(path: Optional[PathLike] = None):
    """The radiograph keypoint detector (``weights/radiograph_keypoints.pt``, SHA-256 checked).

    Raises:
        VertebralFractureLib.nn.weights.WeightsError: missing file or checksum mismatch.

    """
    from ..keypoints.model import load_model
    from ..nn.weights import WEIGHTS_DIR, WeightsError

    target = Path(path) if path is not None else WEIGHTS_DIR / "radiograph_keypoints.pt"
    key = str(target.resolve())
    if key in _KEYPOINT_CACHE:
        return _KEYPOINT_CACHE[key]
    if not target.exists():
        raise WeightsError(f"{target}: radiograph keypoint weights not found "
                           "(train them with 'vertebral-fracture train radiograph-keypoints')")
    try:
        model = load_model(target)  # SHA-256 checked against the manifest, weights_only=True
    except (ValueError, FileNotFoundError) as error:
        raise WeightsError(str(error)) from None
    # The end-plate refinement of the keypoint package is tuned on CT mid-sagittal edges; on a
    # radiograph it moved the points by ~2 mm and tripled the G error (measured), so it is off.
    model.config.setdefault("refine_endplates", False)
    # Radiograph-tuned refinement instead (:func:`refine_detections`); ``None`` turns it off.
    model.config.setdefault("radiograph_refine", dict(RADIOGRAPH_REFINE))
    _KEYPOINT_CACHE[key] = model
    return model


def refine_detections(image: np.ndarray, spacing_mm: Tuple[float, float], detections: list,
                      params: Optional[dict] = None) -> list:
    """Detections with their keypoints snapped to the end-plate edges of the radiograph.

    Args:
        image: (rows, columns) radiograph.
        spacing_mm: (row_mm, column_mm) pixel size.
        detections: :class:`VertebralFractureLib.keypoints.detector.Detection` s, keypoints in
            ``image`` pixels.
        params: keyword arguments of :func:`VertebralFractureLib.keypoints.refine.refine_endplates`
            (default :data:`RADIOGRAPH_REFINE`), lengths in mm.

    Returns:
        New detections (same order); only the rows of the keypoints change.

    """
    import dataclasses

    from ..keypoints.detector import normalise_intensity, resample_2d
    from ..keypoints.refine import refine_endplates

    if not detections:
        return list(detections)
    row_mm, col_mm = (float(s) for s in spacing_mm)
    scale = np.array([col_mm, row_mm])
    image_mm = normalise_intensity(resample_2d(np.asarray(image, dtype=np.float32), (row_mm, col_mm), 1.0))
    points = np.array([np.asarray(d.keypoints, dtype=np.float64) for d in detections]) * scale
    refined = refine_endplates(image_mm, points, **(RADIOGRAPH_REFINE if params is None else params)) / scale
    return [dataclasses.replace(d, keypoints=p) for d, p in zip(detections, refined)]


def measured_keypoints(image: np.ndarray, spacing_mm: Tuple[float, float], keypoints: Sequence[np.ndarray],
                       offset_mm: float = RADIOGRAPH_REFINE["offset_mm"]) -> Tuple[List[np.ndarray], np.ndarray]:
    """The keypoints the heights are measured on, and which of them sit on their endplate.

    The detector's (snapped) keypoints decide what is a body, its column and its level; a fractured body keeps a
    normal shape in them (:func:`VertebralFractureLib.keypoints.refine.trace_endplates`). Each endplate is traced
    across the body on the radiograph resampled to 1 mm; where a line is found its three keypoints move onto it.

    A keypoint counts as on its endplate (the ``endplates`` check, and through it the rule that a height loss is
    reported only when the keypoints sit on the endplates) when both hold: the detector's point had the strongest
    step into the body at it (:func:`.gate2d.endplate_hits`, the gate's rule before the trace), and the measured
    point has it too or, moved by the trace, lies on the line where its own column's border does. The first
    condition keeps the trace from confirming itself: on the real sagittal slices three boxes drawn partly off
    their bodies (a corner on the neighbour's endplate, an endplate on a line inside the body) were withheld
    before; traced, their points lay on edges and were graded 2-3 (``benchmarks/bench_sagittal.py``). The second
    lets a depressed endplate's middle, inside a stronger rim, count (a biconcave fracture in projection).

    Args:
        image: the :func:`.gate2d.body_window` image the detector read.
        spacing_mm: (row_mm, column_mm) at which the detector read it.
        keypoints: (6, 2) ``[column, row]`` per body, in ``image`` pixels.
        offset_mm: shift from the border into the body (the snapping's).

    Returns:
        ``(points, on_endplates)``: (6, 2) keypoints per body in ``image`` pixels, and an (n, 6) bool array.

    """
    from ..keypoints.detector import normalise_intensity, resample_2d
    from ..keypoints.refine import trace_endplates
    from .gate2d import endplate_hits

    if not len(keypoints):
        return [], np.zeros((0, 6), dtype=bool)
    row_mm, col_mm = (float(s) for s in spacing_mm)
    scale = np.array([col_mm, row_mm])
    image_mm = normalise_intensity(resample_2d(np.asarray(image, dtype=np.float32), (row_mm, col_mm), 1.0))
    points = np.array([np.asarray(k, dtype=np.float64) for k in keypoints]) * scale
    traced_points, traced, own_column = trace_endplates(image_mm, points, offset_mm=offset_mm)
    moved = np.repeat(traced, 3, axis=1)[:, [0, 3, 1, 4, 2, 5]]  # (n, 6) in keypoint order (superior first)
    out = [p / scale for p in traced_points]
    detected = np.array([endplate_hits(image, k) for k in keypoints])
    measured = np.array([endplate_hits(image, p) for p in out])
    return out, detected & np.where(moved, own_column | measured, measured)


def shape_grade(keypoints: np.ndarray, scale: np.ndarray) -> Optional[Tuple[int, float]]:
    """``(Genant grade, G)`` of six keypoints from their shape alone (pixels times ``scale``), None if unmeasurable."""
    from ..genant import GenantError, genant_index, grade_from_reduction, heights

    try:
        g = genant_index(heights(np.asarray(keypoints, dtype=float) * scale))
    except GenantError:
        return None
    return grade_from_reduction(1.0 - g), g


def untraced_loss(vertebra: Vertebra, support: Sequence[Tuple[str, np.ndarray]], scale: np.ndarray) -> Optional[str]:
    """Why the traced endplates' shape grade of a vertebra is not confirmed, or None when it is.

    Confirmed: at least one of the ``support`` measurements (name, keypoints) gives the same or a higher shape grade.
    """
    traced = shape_grade(vertebra.keypoints, scale)
    if traced is None:
        return None
    grades = [(name, shape_grade(points, scale)) for name, points in support]
    grades = [(name, grade) for name, grade in grades if grade is not None]
    if any(grade[0] >= traced[0] for _, grade in grades):
        return None
    said = ", ".join(f"the {name} grade {grade[0]} (G {grade[1]:.2f})" for name, grade in grades) or "nothing else"
    return (f"the endplates traced across the body give grade {traced[0]} (G {traced[1]:.2f}), {said}: the height "
            "loss is not confirmed")


def withhold_untraced_losses(result: SpineResult, support: Dict[int, List[Tuple[str, np.ndarray]]],
                             scale: np.ndarray) -> None:
    """Mark "not assessed" a vertebra whose traced endplates give a higher shape grade than any detector's keypoints.

    The trace (:func:`measured_keypoints`) finds a collapsed, tilted or concave endplate that the detector drew
    normal, but on real slices it also moved a normal body's corner from the neighbour's endplate onto its own and
    made a grade 2 of a body a radiologist called normal (A058062_19010108, T11, in a bright frame and as JPEG:
    ``benchmarks/bench_sagittal.py --frame``). A grade resting on the trace alone is not a finding: it needs the
    detector's keypoints of the same body to give at least that grade, else the vertebra is withheld with the grades
    in the reason (:func:`untraced_loss`), so a fracture the detector drew normal is no longer called "normal". A
    trace that lowers the grade is kept (a box inside its body). A second, fracture-rich detector as a further
    confirmation was tried and not kept (``training/radiograph/train_keypoints.py``). The traced grade is kept as the
    vertebra's unconfirmed grade (:data:`~VertebralFractureLib.verdict.UNCONFIRMED_GRADE_KEY`): when the validated
    lateral-view classifier (:mod:`.fracture`) agrees, the verdict asks for a review.

    Args:
        result: the analysis, measured on the traced keypoints.
        support: ``id(vertebra)`` -> (name, keypoints in picture pixels) of the measurements that may confirm it.
        scale: (column_mm, row_mm) of the picture's pixels (1, 1 without a pixel size; G is a ratio).
    """
    from ..quality.stage import withhold_grades

    withhold_grades(result, lambda vertebra: untraced_loss(vertebra, support.get(id(vertebra), ()), scale),
                    record=True)


def _load(source: Union[PathLike, np.ndarray, Any]) -> Tuple[np.ndarray, PixelSize, str]:
    """The grey image, its :class:`.reading.PixelSize` and a name for messages."""
    from .reading import dicom_pixel_size, read_radiograph_pixel_size, to_grey

    if isinstance(source, (str, Path)):
        image, size = read_radiograph_pixel_size(source)
        return image, size, Path(source).name
    if source is None:
        raise InputError("no input image was given")
    if hasattr(source, "GetSpacing"):
        import SimpleITK as sitk

        size = dicom_pixel_size(source) or PixelSize(tuple(float(s) for s in source.GetSpacing()[:2]),
                                                     FROM_VOLUME_HEADER)
        return to_grey(sitk.GetArrayFromImage(source)), size, "input image"
    return to_grey(np.asarray(source)), PixelSize(None, NO_PIXEL_SIZE), "input image"


#: ``input["view_plane"]`` of a picture whose file names no plane (PNG, JPEG, a NIfTI slice, a DICOM file without
#: the attributes of :mod:`.view_plane`): nothing tells a frontal view apart, so it is analysed as a lateral one.
NO_VIEW_PLANE = "not stated by the file: analysed as a lateral view"
#: Lowest objectness of the weaker detections that may continue a lateral view's spine column (:func:`extend_column`).
#: The CT chain's floor (:data:`VertebralFractureLib.keypoints.chain.EXTEND_THRESHOLD`) was 0.1 too until 2026-12-07;
#: lowered to 0.05 for the CT, it changed the real sagittal slices' sacral segments and L5 boxes here (two tests of
#: ``test_real_sagittal.py``), so the lateral views keep the 0.1 their figures were measured with.
WEAK_OBJECTNESS = 0.1
#: Levels the sacral anchor identifies by their anatomy (L5 above the sacrum, S1 below its disc): never left out
#: at the column's end, however faint (a real L5 failing the bone check on a JPEG export was).
ANCHORED = ("L5", "S1")
#: Objectness at or above which a detection counts as confident (``input["confident_detections"]``, a cue of the
#: facing: the detector, trained on pictures facing left, is less sure of mirrored bodies).
CONFIDENT_OBJECTNESS = 0.9
#: Geometric magnifications SID / SOD (DICOM PS3.3 C.8.11.5) at which the detector is run when the file gives the
#: pixel size at the detector plane only (Imager Pixel Spacing without Estimated Radiographic Magnification
#: Factor). A lateral spine lies about 15-25 cm in front of the detector; at a source-detector distance of
#: 100-180 cm that is 1.1-1.3 (e.g. 100 / (100 - 22) = 1.28, 180 / (180 - 22) = 1.14); steps of 15 % keep the
#: working scale within 8 % of any factor 1.0-1.4 (the detector loses the column at about 30 %, see below).
#: Used only to choose the detector's resampling, never to report a length.
DETECTOR_MAGNIFICATIONS = (1.0, 1.15, 1.3)
#: Magnifications at which the detector looks for the weaker bodies that may continue the column
#: (:func:`extend_column`): the image is shown to it as if its pixels were this many times larger, so a body looks
#: that many times taller. The detector reads a fixed mm grid and scores small bodies low: on the real sagittal
#: slices the upper thoracic bodies (T2-T5, 12-16 mm tall) and a flattened T9 scored 0.00-0.66 at the true scale and
#: 0.59-0.98 at 1.3 or 1.6 (measured on six slices); where the pixel size is a guess (an 8-bit export, :mod:`.scale`)
#: bodies anywhere in the column can be shown too small. Whatever is found must still continue the column and pass
#: the image checks (:func:`.gate2d.body_evidence`); the keypoints are refined at the true pixel size. 1.6 as well
#: added levels on the 8-bit exports only (50 against 48 of 113) and doubled their analysis time (2.8 s a slice).
EXTEND_MAGNIFICATIONS = (1.0, 1.3)


def exposed_rows(shadow: np.ndarray) -> Optional[Tuple[int, int]]:
    """First and last rows of the picture that are not wholly the collimator's shadow (None: no shadow)."""
    if not shadow.any():
        return None
    open_rows = np.flatnonzero(~shadow.all(axis=1))
    return (int(open_rows[0]), int(open_rows[-1])) if open_rows.size else None


def rejected_entry(detection, reason: str) -> dict:
    """One entry of ``input["rejected_detections"]``: a detection left out, where it was and why."""
    return {"centre": [round(float(c), 1) for c in detection.centre], "score": round(float(detection.score), 3),
            "reason": reason}


def within_rows(detections: list, rows: Optional[Tuple[int, int]]) -> list:
    """The detections whose keypoints stay within ``rows`` (and a margin).

    A body reaching into a collimator's shadow above or below is cut by the view, as one reaching beyond the
    picture's edge is (the detector drops those itself, with the margin
    :data:`~VertebralFractureLib.keypoints.detector.CUT_MARGIN_PX`).
    """
    from ..keypoints.detector import CUT_MARGIN_PX

    if rows is None:
        return list(detections)
    low, high = rows[0] - CUT_MARGIN_PX, rows[1] + CUT_MARGIN_PX
    return [d for d in detections
            if low <= float(np.min(np.asarray(d.keypoints)[:, 1])) <= float(np.max(np.asarray(d.keypoints)[:, 1]))
            <= high]


def extend_column(windowed: np.ndarray, foreground: float, column: list, findings: list, detections: list,
                  weak: list, view_rows: Optional[Tuple[int, int]] = None) -> Tuple[list, list, List[dict]]:
    """The spine column continued by weaker detections, as the CT analysis continues its chain.

    The detector scores small or faint bodies low (the upper thoracic bodies of a sagittal CT slice: 0.2-0.4 where
    the threshold is 0.5), so a column could stop a few levels short of what the image shows. Candidates down to
    :data:`WEAK_OBJECTNESS` that lie off every detection already made, and
    above the column's lowest body, are added one at a time where they continue the column (one level above its
    top, or in a gap of two levels, stacked on and as tall as their neighbour:
    :func:`VertebralFractureLib.keypoints.chain.extend_chain`) and where the image shows a vertebral body
    (:func:`.gate2d.body_evidence`: in view, in the patient, a bright endplate rim with darker discs, keypoints on
    the endplates). The whole column is then checked again. Never
    below the column: there the sacral segments pass the same checks (S2-S4 boxed on real slices), and a body
    added below L5 takes the sacral anchor away (measured: one real slice lost its anchor, another gained a false
    one, when the column could grow downwards).

    Args:
        windowed: the :func:`.gate2d.body_window` image.
        foreground: its patient threshold.
        column: the detections of the spine column (the gate's members).
        findings: their gate findings (returned as they are when nothing is added).
        detections: every detection the gate saw (weak candidates on them are not added twice).
        weak: the detections down to the weaker threshold.
        view_rows: the rows the view shows (:func:`.gate2d.assess_bodies`).

    Returns:
        (column detections, their gate findings, rejected entries for any that left the column on the new check).
    """
    from ..keypoints.chain import extend_chain
    from .gate2d import assess_bodies, body_evidence

    def off(candidate) -> bool:
        height = float(np.ptp(np.asarray(candidate.keypoints)[:, 1]))
        return all(np.linalg.norm(np.asarray(candidate.centre) - np.asarray(d.centre)) > 0.5 * height
                   for d in detections)

    lowest = max(float(d.centre[1]) for d in column)
    weak = [d for d in weak if off(d) and float(d.centre[1]) < lowest]
    keypoints = np.array([np.asarray(d.keypoints, dtype=np.float64) for d in column]).reshape(-1, 6, 2)
    added = extend_chain(keypoints, np.array([d.keypoints for d in weak]).reshape(-1, 6, 2),
                         np.array([d.score for d in weak]), body_evidence(windowed, foreground, view_rows)
                         ) if weak else []
    if not added:
        return list(column), list(findings), []
    extended = list(column) + [weak[i] for i in added]
    checked = assess_bodies(windowed, foreground, [d.keypoints for d in extended], view_rows)
    members = [i for i, f in enumerate(checked) if f.checks.get("column", 0.0) >= 0.5]
    if not members:  # the new check lost the column: keep the gate's first answer
        return list(column), list(findings), []
    left_out = [rejected_entry(extended[i], checked[i].reason)
                for i in range(len(extended)) if i not in members]
    return [extended[i] for i in members], [checked[i] for i in members], left_out


#: A box taken as S1 below an anchored L5 (:func:`sacral_segment`): its centre one level below L5's (the distance over
#: a level, :data:`.sacrum.LEVEL_PER_HEIGHT` mean heights, within :data:`.sacrum.STEP_RATIO`), stacked on it (depth
#: overlap :data:`VertebralFractureLib.keypoints.chain.MIN_AP_OVERLAP`) or on the rays along which the sacral test
#: looks for the S1 segment (:data:`.sacrum.S1_FAN_DEG` posterior of L5's axis), and as tall (``chain.HEIGHT_RATIO``);
#: the checks of the 2D gate it must pass (not the endplates: fused below, S1 has no disc under it).
S1_CHECKS = ("field_of_view", "position", "bone")


def sacral_segment(windowed: np.ndarray, foreground: float, l5, candidates: Sequence,
                   view_rows: Optional[Tuple[int, int]] = None) -> Optional[Any]:
    """The detection that boxes S1 below an anchored L5, or None.

    The anchor (:mod:`.sacrum`) names L5 from the sacrum below it; S1, the segment the count rests on, is often
    boxed weakly or not kept in the column (fused below, it has no disc under it, so the column's checks of a mobile
    body fail: three of the eight real sagittal slices anchored on the sacrum had no S1). The best-scoring candidate
    one level below L5, stacked on it (depth extents overlapping along L5's own front-to-back axis: S1 is tilted
    forwards, so in image columns it lies behind L5; or, tilted further, its centre on the rays the sacral test reads
    for the S1 segment, 0-30 degrees posterior of L5's axis) and about as tall, that the image shows as bone in the
    patient (:data:`S1_CHECKS` of the 2D gate) is reported as S1; S1 is never graded (sacral level). The rays were
    added when the depth overlap alone lost A058062_19010108's S1 (boxes 29-31 degrees posterior of the detected L5,
    overlapping its depth by 0.30-0.44; the annotated S1 centres of the real slices lie 5-19 degrees posterior of
    their L5's own axis, 4-31 degrees of the L4-L5 line).

    Args:
        windowed: the :func:`.gate2d.body_window` image.
        foreground: its patient threshold.
        l5: the detection named L5.
        candidates: detections at any threshold (duplicates allowed).
        view_rows: the rows the view shows (:func:`.gate2d.assess_bodies`).
    """
    from ..keypoints.chain import HEIGHT_RATIO, MIN_AP_OVERLAP, extent_overlap
    from .fracture import body_axes
    from .gate2d import _Body, _body_checks, patient_outline
    from .sacrum import LEVEL_PER_HEIGHT, S1_FAN_DEG, STEP_RATIO

    upper = np.asarray(l5.keypoints, dtype=np.float64)
    centre, down, back, _ = body_axes(upper)
    height = float(np.ptp(upper[:, 1]))
    depth = upper @ back
    outline = None
    best = None
    for candidate in sorted(candidates, key=lambda d: -float(d.score)):
        points = np.asarray(candidate.keypoints, dtype=np.float64)
        tall = float(np.ptp(points[:, 1]))
        offset = np.asarray(candidate.centre, dtype=np.float64) - centre
        steps = float(np.linalg.norm(offset)) / (LEVEL_PER_HEIGHT * 0.5 * (height + tall))
        stacked = extent_overlap(points @ back, depth) >= MIN_AP_OVERLAP
        on_s1_rays = S1_FAN_DEG[0] <= np.degrees(np.arctan2(offset @ back, offset @ down)) <= S1_FAN_DEG[1]
        if (float(offset @ down) <= 0 or not STEP_RATIO[0] <= steps <= STEP_RATIO[1]
                or not HEIGHT_RATIO[0] <= tall / max(height, 1e-6) <= HEIGHT_RATIO[1]
                or not (stacked or on_s1_rays)):
            continue
        if outline is None:
            outline = patient_outline(windowed, foreground)
        scores, _ = _body_checks(windowed, foreground, _Body(points), outline, view_rows)
        if all(scores.get(name, 1.0) >= 0.5 for name in S1_CHECKS):
            best = candidate
            break
    return best


def display_image(image: np.ndarray) -> np.ndarray:
    """The radiograph stretched onto :data:`DISPLAY_WINDOW` for the overview export."""
    low, high = np.percentile(image, [1.0, 99.5])
    scaled = np.clip((image - low) / max(float(high - low), 1e-6), 0.0, 1.0)
    return (DISPLAY_WINDOW[0] + scaled * (DISPLAY_WINDOW[1] - DISPLAY_WINDOW[0])).astype(np.float32)


def label_height_units(result: SpineResult, size: PixelSize) -> None:
    """Record the heights' unit and plane (called after the last :meth:`SpineResult.recompute`).

    With no pixel size the heights are pixels (``pixel_spacing`` 1, 1): ``input["height_unit"]`` (set with
    the rest of the input block) is ``"pixel"`` and the schema then writes them as ``heights_px`` with
    ``heights_mm: null`` (:meth:`SpineResult.to_dict`, kept through every reload and save), so no reader
    takes pixels for mm. At the detector plane (Imager Pixel Spacing with no magnification factor, :mod:`.reading`)
    the heights are mm there and each vertebra says ``height_plane: "detector"``.

    Args:
        result: the radiograph result (frame ``"pixel"``), measures computed.
        size: where its pixel size came from.

    """
    for vertebra in result.vertebrae:
        vertebra.extra.pop("height_plane", None)
        if size.spacing is not None and size.at_detector:
            vertebra.extra["height_plane"] = "detector"


def analyze_radiograph(
    source: Union[PathLike, np.ndarray, Any],
    progress: Optional[Progress] = None,
    *,
    pixel_spacing: Optional[Tuple[float, float]] = None,
    centroid_model=None,
    keypoint_model=None,
    detector: Optional[Callable[[np.ndarray, Tuple[float, float]], list]] = None,
    facing: str = "auto",
    fracture_model=None,
    lumbosacral_model=None,
) -> Analysis:
    """Analyse one lateral spine radiograph.

    Args:
        source: a PNG / JPEG / TIFF / DICOM path, a 2D array (row 0 superior) or a 2D SimpleITK image.
        progress: progress callback and cancellation.
        pixel_spacing: (column_mm, row_mm), overriding the file's.
        centroid_model: a :class:`.model.CentroidModel` (default: shipped UNet-L2 weights).
        keypoint_model: a :class:`VertebralFractureLib.keypoints.model.KeypointModel` trained on
            radiographs (default: shipped ``radiograph_keypoints.pt``).
        detector: ``(image, (row_mm, column_mm)) -> [Detection]`` replacing the keypoint model
            (another detector, or annotated vertebrae to be labelled and measured); the picture is then
            analysed as given (``facing`` "auto" means "left").
        facing: where the patient's front is in the picture: "left" (column 0 anterior, the models'
            convention), "right", or "auto": both are analysed and the one showing the spine column is kept
            (:mod:`.facing`; lateral films are taken and displayed facing either way).
        fracture_model: the lateral-view fracture classifier (:mod:`.fracture`; default: shipped
            ``radiograph_fracture.pt``), or False to leave ``fracture_probability`` empty.
        lumbosacral_model: the lumbosacral classifier of the sacral anchor (:mod:`.lumbosacral`; default: shipped
            ``radiograph_lumbosacral.pt``), or False for the sacral test alone; ``benchmarks/bench_sagittal.py
            --folds`` gives each real slice the network trained without its patient.

    Returns:
        The :class:`~VertebralFractureLib.pipeline.Analysis`; ``result.frame == "pixel"``, keypoints
        and centroids ``[column, row]`` in the picture's own pixels whichever way it faces, heights in mm (in
        pixels when no pixel size is known; ``input["height_unit"]``, ``input["pixel_size_source"]``,
        ``input["height_plane"]`` say which), ``input["facing"]``, ``input["view_plane"]`` (the plane the DICOM
        header names, or :data:`NO_VIEW_PLANE`).

    Raises:
        InputError / ImageReadError: for inputs that are not a usable 2D radiograph.
        Cancelled: when cancelled through ``progress``.

    """
    from .facing import FACINGS, choose_facing, column_place, mirror_analysis, trunk_threshold
    from .gate2d import collimation_mask, rows_overlap, scanned_rows, without_collimation

    if facing not in FACINGS + ("auto",):
        raise ValueError(f"facing must be one of {FACINGS + ('auto',)}, got {facing!r}")
    progress = progress or Progress()
    warnings = []
    started = time.perf_counter()
    progress(0.0, "reading the radiograph")
    image, file_size, name = _load(source)
    image = padding_as_air(image)
    check_radiograph(image, name)
    # a DICOM header may say which plane the picture lies in (a frontal or oblique film is refused: :mod:`.view_plane`)
    # and which way the patient faces; then that is not guessed
    said = read_header_view(source) if isinstance(source, (str, Path)) else header_view(source)
    if said is not None and said.plane != LATERAL:
        raise InputError(not_lateral(name, said))
    shadow = collimation_mask(image)
    exposed = exposed_rows(shadow)
    if shadow.any():  # the collimator's bright shadow at the edges is no patient: shown and analysed as air
        image = without_collimation(image)
        warnings.append(f"{name}: {100.0 * shadow.mean():.0f} % of the picture is the collimator's shadow (flat, "
                        "bright, at the edges); it is treated as background")
    # rows beyond the scanned range (a reformat's padding) are outside the view, as the picture's edge is
    exposed = rows_overlap(exposed, scanned_rows(image))
    load_s = time.perf_counter() - started
    told = said.facing if said is not None and facing == "auto" else None
    sides = [facing] if facing != "auto" else ([told] if told else ["left"] if detector is not None else list(FACINGS))
    analyses, errors, confident = {}, {}, {}
    for k, side in enumerate(sides):
        view = image if side == "left" else np.ascontiguousarray(image[:, ::-1])
        try:
            analyses[side] = _analyze_view(
                view, file_size, name, progress.sub(k / len(sides), (k + 1) / len(sides)), list(warnings),
                pixel_spacing=pixel_spacing, centroid_model=centroid_model, keypoint_model=keypoint_model,
                detector=detector, cues=confident.setdefault(side, {}), fracture_model=fracture_model,
                lumbosacral_model=lumbosacral_model, exposed=exposed)
        except InputError as error:
            errors[side] = error
    place = None
    if "right" in analyses:  # where the mirrored analysis's column lies in the trunk of the picture as given
        width = image.shape[1]
        place = column_place(image, [((width - 1) - v.centroid[0], v.centroid[1])
                                     for v in analyses["right"].result.vertebrae], trunk_threshold(image))
    side = choose_facing({s: a.result for s, a in analyses.items()},
                         {s: c.get("confident_detections", 0) for s, c in confident.items()},
                         place) if analyses else sides[0]
    if side not in analyses:
        raise errors[side]
    analysis = analyses[side]
    if side == "right":
        mirror_analysis(analysis, image)
        analysis.result.warnings.append(f"{name}: the patient faces right (front on the right of the picture): "
                                        "analysed mirrored, every position given in the picture's own pixels")
    analysis.result.input["facing"] = side
    # which plane the picture lies in, as far as anything says: the DICOM header, else nothing (analysed as lateral)
    analysis.result.input["view_plane"] = said.describe() if said is not None else NO_VIEW_PLANE
    analysis.result.input["facing_source"] = ("given" if facing != "auto" else said.tag if told
                                              else "as given" if len(sides) == 1 else "image")
    analysis.result.timings_s = {"load": round(load_s, 3), **analysis.result.timings_s}
    progress(1.0, f"done: {len(analysis.result.vertebrae)} vertebrae")
    return analysis


def _analyze_view(image: np.ndarray, file_size: PixelSize, name: str, progress: Progress, warnings: List[str], *,
                  pixel_spacing: Optional[Tuple[float, float]], centroid_model, keypoint_model,
                  detector: Optional[Callable[[np.ndarray, Tuple[float, float]], list]],
                  cues: Optional[dict] = None, fracture_model=None, lumbosacral_model=None,
                  exposed: Optional[Tuple[int, int]] = None) -> Analysis:
    """The analysis of a grey radiograph facing left (column 0 anterior): see :func:`analyze_radiograph`.

    ``cues`` receives ``confident_detections`` (:data:`CONFIDENT_OBJECTNESS`), also when the analysis fails;
    ``exposed``: the first and last rows outside the collimator's shadow (:func:`exposed_rows`).
    """
    from ..keypoints.chain import chain_has_room
    from ..keypoints.detector import detect_vertebrae
    from ..quality.stage import withhold_lordotic_wedges, withhold_unsupported_grades
    from .column_template import PLACED_CHECK, PLACED_REASON, continue_column
    from .gate2d import (
        FAINT_COLUMN_KEY,
        REASONS,
        _clipped_with_tissue,
        assess_bodies,
        body_window,
        bone_clipped,
        column_ends,
        detector_window,
        with_endplates,
        with_level,
    )
    from .labels import RADIOGRAPH_LEVELS, assign_levels
    from .locate import _model, heatmap_peaks, predict_heatmaps
    from .sacrum import BELOW_S1_REASON, SPARE_REASON, anchored_levels
    from .scale import candidate_scales, search_scale

    timings: Dict[str, float] = {}
    file_spacing = file_size.spacing
    started = time.perf_counter()
    progress(0.1, "locating levels T4-L4 (Gartland et al. 2025)")
    centroid_model = _model(centroid_model)
    heatmaps, frame = predict_heatmaps(image, centroid_model)
    peaks, values = heatmap_peaks(heatmaps)
    located = {level: (*frame.to_image(p), float(v)) for level, p, v in zip(centroid_model.levels, peaks, values)
               if v >= centroid_model.config["presence_threshold"]}
    timings["levels"] = time.perf_counter() - started

    spacing = tuple(float(s) for s in pixel_spacing) if pixel_spacing is not None else file_spacing
    spacing_source = "given" if pixel_spacing is not None else ("file" if file_spacing is not None else "unknown")
    size = PixelSize(spacing, FROM_CALLER) if pixel_spacing is not None else file_size
    started = time.perf_counter()
    progress(0.4, "detecting vertebrae and keypoints (Pisov et al. 2020, §6)")
    windowed, window = body_window(image)
    if detector is None:
        keypoint_model = keypoint_model if keypoint_model is not None else load_keypoint_model()
        refine = keypoint_model.config.get("radiograph_refine")
        # the window's low end below the fat, also on exports that clipped the air
        seen = detector_window(image, (windowed, window))

        def detect(pixel_mm: Tuple[float, float], threshold: Optional[float] = None) -> list:
            # every detection goes to the 2D gate; the levels come from the sacrum or the heatmaps below
            found = within_rows(detect_vertebrae(seen, spacing_mm=pixel_mm, model=keypoint_model,
                                                 order_levels=False, score_threshold=threshold), exposed)
            return refine_detections(windowed, pixel_mm, found, refine) if refine else found

        def detect_weak(pixel_mm: Tuple[float, float]) -> list:
            # also magnified: small bodies score higher when shown larger (EXTEND_MAGNIFICATIONS)
            found = []
            for magnification in EXTEND_MAGNIFICATIONS:
                shown = (float(pixel_mm[0]) * magnification, float(pixel_mm[1]) * magnification)
                weak = within_rows(detect_vertebrae(seen, spacing_mm=shown, model=keypoint_model,
                                                    order_levels=False, score_threshold=WEAK_OBJECTNESS), exposed)
                found += refine_detections(windowed, pixel_mm, weak, refine) if refine else weak
            return found
    else:
        refine = None  # annotated or external keypoints are measured as given
        detect_weak = None

        def detect(pixel_mm: Tuple[float, float]) -> list:
            return list(detector(image, pixel_mm))

    findings = None
    scale_search: Optional[List[dict]] = None
    if spacing is None:
        # No pixel size: the detector is run at a few working scales and the one giving the best spine column
        # is kept (search_scale); nothing in mm is reported, heights are in pixels.
        working, detections, findings, scale_search = search_scale(
            windowed, window["foreground"], detect, candidate_scales(located, image.shape), exposed)
        detector_mm = (working, working)
        warnings.append(f"{name}: {size.note()}")
    elif size.at_detector:
        # Pixel size at the detector plane: the anatomy is smaller by the unknown magnification SID / SOD, enough for
        # the detector (trained on a fixed mm grid) to lose the column at 1.25 (measured on a real slice written as a
        # DX file). It runs at the working scales of DETECTOR_MAGNIFICATIONS and the best spine column is kept
        # (search_scale); the heights stay in mm at the detector plane, never rescaled by a guessed magnification.
        col_mm, row_mm = spacing
        mean_mm = 0.5 * (col_mm + row_mm)

        def detect_demagnified(pixel_mm: Tuple[float, float]) -> list:
            factor = float(pixel_mm[0]) / mean_mm
            return detect((row_mm * factor, col_mm * factor))

        working, detections, findings, scale_search = search_scale(
            windowed, window["foreground"], detect_demagnified, [mean_mm / m for m in DETECTOR_MAGNIFICATIONS], exposed)
        for summary, magnification in zip(scale_search, DETECTOR_MAGNIFICATIONS):
            summary["assumed_magnification"] = magnification
        detector_mm = (row_mm * working / mean_mm, col_mm * working / mean_mm)
        warnings.append(f"{name}: {size.note()}")
    else:
        col_mm, row_mm = spacing
        detector_mm = (row_mm, col_mm)
        detections = detect(detector_mm)
    timings["keypoints"] = time.perf_counter() - started
    confident = sum(1 for d in detections if d.score >= CONFIDENT_OBJECTNESS)  # a cue of the facing (.facing)
    if cues is not None:
        cues["confident_detections"] = confident
    if not detections:
        raise InputError(f"{name}: no vertebra was found on this image; check that it is a lateral view of the "
                         "thoracic or lumbar spine with the vertebral bodies in view")

    progress(0.8, "quality gate: is each detection a vertebral body in view?")
    if findings is None:
        findings = assess_bodies(windowed, window["foreground"], [d.keypoints for d in detections], exposed)
    members = [i for i, f in enumerate(findings) if f.checks.get("column", 0.0) >= 0.5]
    rejected = [rejected_entry(detections[i], findings[i].reason)
                for i in range(len(detections)) if i not in members]
    if rejected:
        warnings.append(f"{len(rejected)} detection(s) are not vertebral bodies of the spine column and were left out")
    if not members:
        raise InputError(f"{name}: no vertebral body was found in a spine column ({len(detections)} detection(s), "
                         "none a bright-rimmed body with discs above and below in line with its neighbours); "
                         "check that this is a lateral spine view with the vertebral bodies in view")
    candidates = detections
    detections = [detections[i] for i in members]
    findings = [findings[i] for i in members]
    weak_found: Optional[list] = None

    def weak_detections() -> list:
        nonlocal weak_found
        if weak_found is None:
            weak_found = detect_weak(detector_mm) if detect_weak is not None else []
        return weak_found

    if detect_weak is not None and chain_has_room(np.array([d.keypoints for d in detections]).reshape(-1, 6, 2),
                                                  windowed.shape[0]):
        # weak detections that continue the column and that the image shows as bodies (none fit a full column)
        before = {id(d) for d in detections}
        detections, findings, left_out = extend_column(windowed, window["foreground"], detections, findings,
                                                       candidates, weak_detections(), exposed)
        rejected += left_out
        added = sum(1 for d in detections if id(d) not in before)
        if added:
            warnings.append(f"{added} weaker detection(s) continuing the spine column were kept: the image shows "
                            "them as vertebral bodies one level above the column or in a gap of two levels "
                            "(keypoints/chain.py; small bodies are also looked for with the image magnified)")
    faint = any(f.values.get(FAINT_COLUMN_KEY) for f in findings)
    if faint:
        seen = sum(1 for f in findings if f.checks.get("bone", 0.0) >= 0.5)
        warnings.append(f"{name}: the spine column is faint: {seen} of its {len(findings)} bodies show a bright "
                        "endplate rim with darker discs (overlying bone or bowel, a faint film); the column is kept "
                        "for its regular spacing and the bodies the image does not show are not assessed")
    progress(0.85, "assigning levels")
    centres = np.array([d.centre for d in detections]).reshape(-1, 2)
    labels, confidence = assign_levels(frame.to_input(centres), heatmaps, centroid_model.levels, centres[:, 1])
    # levels counted from the sacrum when it is found below the column (.sacrum), else the heatmap guess
    clipped_bone = bone_clipped(image)
    if clipped_bone is not None:
        warnings.append(f"{name}: the bone is clipped to the picture's brightest value "
                        f"({100.0 * clipped_bone:.0f} % of the patient: a soft-tissue window); the sacrum anchors the "
                        "levels only where the sacral test finds it: export with a bone window")
    anchor, levels = anchored_levels(windowed, window["foreground"], [d.keypoints for d in detections],
                                     [f.checks for f in findings], lumbosacral_model, view_rows=exposed,
                                     classifier_alone=clipped_bone is None)
    level_certain = [False] * len(detections)
    if anchor is not None:
        for i in anchor.below_s1:
            rejected.append(rejected_entry(detections[i], BELOW_S1_REASON))
        for i in anchor.spare:
            rejected.append(rejected_entry(detections[i], SPARE_REASON))
        keep = [i for i in range(len(detections)) if i in anchor.labels]
        labels = [anchor.labels[i] for i in keep]
        level_certain = [bool(anchor.certain[i]) for i in keep]
        detections, findings = [detections[i] for i in keep], [findings[i] for i in keep]
        confidence = np.ones(len(keep))  # the level comes from the count, not from the heatmaps
        if anchor.below_s1:
            warnings.append(f"{len(anchor.below_s1)} detection(s) below S1 (sacrum or pelvis) were left out")
        if levels["uncertain_levels"]:
            # "levels uncertain": dropped once a reader sets a level by hand (mrml/editing.py anchored_by_hand)
            warnings.append(f"{name}: levels uncertain past an uneven step: {', '.join(levels['uncertain_levels'])} "
                            "(counted from the sacrum; the spacing of two neighbouring bodies fits no whole number of "
                            "levels)")
        if "S1" not in labels and "L5" in labels:
            # S1, the segment the count rests on, boxed below L5 where a detection fits it (shown, not graded)
            l5 = labels.index("L5")
            s1 = sacral_segment(windowed, window["foreground"], detections[l5], candidates + weak_detections(),
                                exposed)
            if s1 is not None:
                detections.append(s1)
                findings.append(assess_bodies(windowed, window["foreground"], [s1.keypoints], exposed)[0])
                labels.append("S1")
                level_certain.append(level_certain[l5])
                confidence = np.append(confidence, 1.0)
    else:
        warnings.append(f"{name}: levels uncertain: the sacrum was not identified "
                        f"({levels['reason']}), so the level names are a guess from the heatmaps and the order; "
                        "set one level by hand to fix them")
    if detect_weak is not None:
        # bodies above the column where the detector boxed none: the top body moved one level up (.column_template)
        names = list(RADIOGRAPH_LEVELS)
        continued = continue_column(windowed, window["foreground"], detections, findings,
                                    lambda i: names.index(labels[i]) if labels[i] in names else 0, exposed)
        if continued is not None:
            first = names.index(labels[continued.seed])
            for i in continued.gone:
                rejected.append(rejected_entry(detections[i], PLACED_REASON))
            keep = [i for i in range(len(detections)) if i not in continued.gone]
            detections = [detections[i] for i in keep] + continued.placed
            findings = [findings[i] for i in keep] + continued.findings
            labels = [labels[i] for i in keep] + [names[first - k] for k in range(1, len(continued.placed) + 1)]
            level_certain = ([level_certain[i] for i in keep]
                             + [level_certain[continued.seed]] * len(continued.placed))
            confidence = np.append(np.asarray(confidence)[keep],
                                   [float(confidence[continued.seed])] * len(continued.placed))
            count = len(continued.placed)
            warnings.append(f"{count} vertebral bod{'y was' if count == 1 else 'ies were'} placed above the spine "
                            "column where the detector boxed none (the image shows a body one level up): counted "
                            "for the levels, not assessed")
    # boxes beyond the column's last bodies that the image does not show as vertebral bodies (.gate2d)
    ends = column_ends([f.checks for f in findings], [d.centre[1] for d in detections],
                       protected=[i for i, label in enumerate(labels) if anchor is not None and label in ANCHORED])
    if ends:
        for i in ends:
            rejected.append(rejected_entry(detections[i], REASONS["column_end"]))
        keep = [i for i in range(len(detections)) if i not in ends]
        detections, findings = [detections[i] for i in keep], [findings[i] for i in keep]
        labels, confidence = [labels[i] for i in keep], np.asarray(confidence)[keep]
        level_certain = [level_certain[i] for i in keep]
        warnings.append(f"{len(ends)} detection(s) at the ends of the column show no vertebral body and were left out")

    snapped = [np.asarray(d.keypoints, dtype=float) for d in detections]
    measured = snapped
    traced = bool(refine) and RADIOGRAPH_TRACE
    if traced:  # heights on each endplate traced across its body (not on a placed body: it is not measured)
        measured, on_endplates = measured_keypoints(windowed, detector_mm, snapped)
        placed = [PLACED_CHECK in f.checks for f in findings]
        measured = [s if p else m for s, m, p in zip(snapped, measured, placed)]
        findings = [f if p else with_endplates(f, hits) for f, hits, p in zip(findings, on_endplates, placed)]

    reported = spacing if spacing is not None else (1.0, 1.0)
    patient_region = ("above the darkest value, where the export clipped the air with the darker fat"
                      if _clipped_with_tissue(image) is not None else "Otsu")
    result = SpineResult(
        frame="pixel",
        pixel_spacing=tuple(reported),
        input={"path": name, "modality": "lateral radiograph", "size": [int(image.shape[1]), int(image.shape[0])],
               "pixel_spacing": list(reported) if spacing is not None else None,
               "pixel_spacing_source": spacing_source,
               "pixel_size_source": size.source,
               "height_unit": size.unit,
               "height_plane": None if spacing is None else ("detector" if size.at_detector else "patient"),
               "intensity_window": {"method": "1st-99.5th percentile of the patient region (" + patient_region + ")",
                                    "low": round(window["low"], 2), "high": round(window["high"], 2)},
               "rejected_detections": rejected,
               "faint_column": bool(faint),
               "confident_detections": confident,
               "scale_search": scale_search,
               "level_centroids": {k: [round(v[0], 2), round(v[1], 2), round(v[2], 3)] for k, v in located.items()}},
        warnings=warnings,
        models={"radiograph_centroids": centroid_model.sha256 or "untracked",
                "radiograph_keypoints": (getattr(keypoint_model, "sha256", None) or "untracked")
                if detector is None else "external detector"},
    )
    result.patient["levels"] = levels
    analysis = Analysis(result=result, image=image, mid_sagittal=display_image(image),
                        mid_spacing=(reported[1], reported[0]))
    for detection, points, label, conf, finding, label_sure in zip(detections, measured, labels, confidence, findings,
                                                                   level_certain):
        finding = with_level(finding, label)
        vertebra = Vertebra(label=label, centroid=points.mean(axis=0), keypoints=points,
                            confidence=float(min(detection.score, conf)), source="model",
                            quality=finding.quality, checks=finding.checks)
        vertebra.extra[LEVEL_CERTAIN_KEY] = bool(label_sure)
        if finding.status != "assessed":
            vertebra.not_assessed(finding.reason)
        result.vertebrae.append(vertebra)
        analysis.mid_points[label] = points
    if fracture_model is not False:  # a learned second opinion: it can ask for a look, never grade (verdict.py)
        from .fracture import score_vertebrae

        started = time.perf_counter()
        progress(0.9, "fracture classifier (patches after Husseini et al. 2020)")
        score_vertebrae(result, windowed, measured, fracture_model)
        timings["fracture"] = time.perf_counter() - started
    result.timings_s = {k: round(v, 3) for k, v in timings.items()}
    result.recompute()
    # the CT gate's rule: a height loss is reported only when the keypoints sit on the endplates
    withhold_unsupported_grades(result)
    if traced:
        scale = np.asarray(reported, dtype=float)
        support = {id(v): [("detector's keypoints", s)] for v, s in zip(result.vertebrae, snapped)}
        withhold_untraced_losses(result, support, scale)
    withhold_lordotic_wedges(result)
    label_height_units(result, size)
    return analysis
