"""Continue the spine column upwards where the detector boxes no body: the top body moved one level up.

On the real sagittal CT slices the detector boxes the small upper thoracic bodies (T1-T5) badly or not at all: its
boxes there straddle a disc, sit half a level off or lie on the trachea, so no weak detection passes the image
checks and the column stops one to four levels below what the slice shows (``benchmarks/bench_sagittal.py``: T1-T3
of A027284_19000925, T3-T5 of A062055_19001127). The column itself says where the next body must be: about one level
spacing above its top body, along the line through its two top bodies, about as tall, square to the column within a
few degrees (kyphosis). Each candidate is the top body's six keypoints moved there (a search over the step, the
sideways offset, the height and the tilt: :func:`candidates_above`; for the first level the outline is that of the
highest body whose rim shows and whose keypoints sit on its endplates, moved to the top body's place, since the
detector's topmost boxes are often drawn askew) and is compared with the picture of that body (:func:`body_patches`:
the body with its discs above and below, the tissue in front and the canal behind, in the body's own frame;
:func:`likeness`: normalised cross-correlation). Adjacent vertebrae look alike on a sagittal slice; a box on the
pedicles and facet joints (a slice that has left the bodies), on the trachea or across a disc does not. The
likeliest candidates are then checked, best first, with what lets a weak detection continue the column
(:func:`.gate2d.body_evidence`: in view, behind the patient's contents, a bright endplate rim with darker discs,
keypoints on the endplates); the first that passes is placed and the search goes on from it, one level at a time.

Only upwards: below the column lie the sacral segments and the pelvis, which pass the same checks (see
:func:`.analyze.extend_column`), and the sacral anchor names the column's lowest bodies. A placed body's outline is
the moved box, not a measurement: it is counted for the level (its name continues the column's count), shown, and
never graded (the gate's ``placed`` check; its keypoints are not traced either).

Measured (``benchmarks/bench_sagittal.py --all``, the 20 real slices): level accuracy on the annotated bodies 102 ->
105 of 113 (T2 and T3 of A027284_19000925, T5 of A062055_19001127 placed on their bodies; four upper thoracic bodies
of the unanchored A002304_19001231 found), no level named wrongly with certainty, no false grade; none either with
the slices mirrored (102 -> 105), framed (64 -> 64) or exported as 8-bit PNG (78 -> 81). The step was first allowed
up to 1.15 spacings: on the framed A027284_19001231 a box landed across the T3/T4 disc and was counted T4 while
nearer T3 (a level named wrongly with certainty); no step is longer than the spacing now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

#: Step from the top body to the candidate, as a fraction of the local centre-to-centre spacing (upper thoracic
#: levels shorten by 2-5 % per level going up; Panjabi et al. 1991). Not longer than the spacing: a longer step lands
#: on the disc above the next body, and a box there can be counted as the level beyond it.
STEP_FRACTIONS = np.arange(0.8, 1.051, 0.025)
#: Sideways offset (fractions of the top body's depth, across the column line; the kyphosis bends the upper thoracic
#: column forwards by up to a third of a depth per level).
SIDE_FRACTIONS = np.arange(-0.3, 0.301, 0.075)
#: Height of the candidate over the top body's.
HEIGHT_SCALES = (0.8, 0.9, 1.0, 1.1)
#: Tilt (degrees) of the candidate's axis against the column line through the two top bodies' centres (a body's
#: endplates stay near square to the column; the kyphosis turns each level a few degrees further).
TILTS_DEG = (-6.0, -3.0, 0.0, 3.0, 6.0)
#: Most bodies added above the column.
MAX_ADDED = 6
#: The gate's hard check a placed body fails (:data:`.gate2d.HARD_CHECKS`): its box is the moved top box, not a
#: measurement of the body, so it counts for the level and is not assessed.
PLACED_CHECK = "placed"


def _rotation(degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def candidates_above(column: Sequence[np.ndarray], shape: Optional[np.ndarray] = None) -> List[np.ndarray]:
    """The top body's keypoints moved one level up along the column (the search of the module doc).

    Args:
        column: (6, 2) keypoints ``[column, row]`` of the column's bodies, any order, at least two.
        shape: (6, 2) keypoints of the body whose outline is moved (default: the top body's).

    Returns:
        candidate keypoint arrays (6, 2).
    """
    points = sorted((np.asarray(k, dtype=np.float64).reshape(6, 2) for k in column), key=lambda k: k[:, 1].mean())
    top, below = points[0], points[1]
    centre, under = top.mean(axis=0), below.mean(axis=0)
    up = centre - under
    spacing = float(np.linalg.norm(up))
    if spacing <= 0:
        return []
    up /= spacing
    side = np.array([up[1], -up[0]])
    if shape is not None:
        top = np.asarray(shape, dtype=np.float64).reshape(6, 2) - np.asarray(shape).reshape(6, 2).mean(axis=0) + centre
    depth = float(np.linalg.norm(top[[4, 5]].mean(axis=0) - top[[0, 1]].mean(axis=0)))
    inferior = top[[1, 3, 5]].mean(axis=0) - top[[0, 2, 4]].mean(axis=0)
    axis = inferior / max(float(np.linalg.norm(inferior)), 1e-6)
    # the top body turned so that its axis runs along the column line, then tilted by the search
    square = np.degrees(np.arctan2(axis[0] * -up[1] - axis[1] * -up[0], axis @ -up))
    relative = (top - centre) @ _rotation(square).T
    along = relative @ -up
    axis = -up
    found = []
    for tilt in TILTS_DEG:
        turn = _rotation(tilt)
        for scale in HEIGHT_SCALES:
            shaped = relative + np.outer(along * (scale - 1.0), axis)
            shaped = shaped @ turn.T
            for step in STEP_FRACTIONS:
                for offset in SIDE_FRACTIONS:
                    found.append(centre + step * spacing * up + offset * depth * side + shaped)
    return found


#: The picture a body is compared by: a grid across its depth (fractions of the depth from the centre, anterior
#: tissue to the spinal canal behind) and along its axis (fractions of the height, the discs above and below).
PATCH_DEPTH = np.linspace(-0.8, 0.8, 17)
PATCH_HEIGHT = np.linspace(-0.85, 0.85, 17)
#: Candidates (best likeness first) whose image checks are run at each level.
CHECKED_PER_LEVEL = 25
#: Bodies (the column's highest that show their rim with the keypoints on their endplates) averaged into the template.
#: One, the nearest such body: with the mean of the three highest, the template looked less like the small upper
#: thoracic bodies (measured before the template's outline was used for the first level: 104 of 113 levels right either
#: way on the real slices, the unanchored A002304_19001231's four upper bodies lost with three).
TEMPLATE_BODIES = 1
#: Least likeness (normalised cross-correlation with the template) of a placed body. Measured on the real sagittal
#: slices, a detected body and the detected body above it (both with their rim and endplates seen; 92 pairs): median
#: 0.64, quartile 0.50, tenth percentile 0.30. At 0.5 a placed body looks at least as much like its neighbour as
#: three in four real neighbours do. At 0.3 (measured with the top box's outline), two more upper thoracic bodies of
#: the real slices were placed (106 of 113 levels, against 104 at 0.5) but so were bright rings around fat drawn
#: above a column (a slice through the pedicles: ``test_column_template.py``); missing a level is the smaller harm.
MIN_LIKENESS = 0.5


def body_patches(image01: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Each body's picture in its own frame (:data:`PATCH_DEPTH` x :data:`PATCH_HEIGHT`), linearly interpolated.

    Args:
        image01: the :func:`.gate2d.body_window` image.
        keypoints: (n, 6, 2) keypoints ``[column, row]``.

    Returns:
        (n, len(PATCH_HEIGHT) * len(PATCH_DEPTH)) samples.
    """
    from scipy.ndimage import map_coordinates

    k = np.asarray(keypoints, dtype=np.float64).reshape(-1, 6, 2)
    centre = k.mean(axis=1)
    back = k[:, [4, 5]].mean(axis=1) - k[:, [0, 1]].mean(axis=1)
    down = k[:, [1, 3, 5]].mean(axis=1) - k[:, [0, 2, 4]].mean(axis=1)
    u, t = np.meshgrid(PATCH_DEPTH, PATCH_HEIGHT)
    points = (centre[:, None, :] + u.ravel()[None, :, None] * back[:, None, :]
              + t.ravel()[None, :, None] * down[:, None, :])
    return map_coordinates(image01, [points[..., 1].ravel(), points[..., 0].ravel()], order=1,
                           mode="nearest").reshape(len(k), -1)


def likeness(patches: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of each patch with the template (-1 ... 1)."""
    a = patches - patches.mean(axis=1, keepdims=True)
    b = np.asarray(template, dtype=np.float64) - float(np.mean(template))
    norm = np.linalg.norm(a, axis=1) * max(float(np.linalg.norm(b)), 1e-9)
    return (a @ b) / np.maximum(norm, 1e-9)


def continue_upwards(image01: np.ndarray, foreground: float, column: Sequence[np.ndarray],
                     view_rows: Optional[Tuple[int, int]] = None, limit: int = MAX_ADDED,
                     models: Optional[Sequence[np.ndarray]] = None) -> List[np.ndarray]:
    """Bodies above the column's top one that look like it and that the image shows where the next level is.

    Args:
        image01: the :func:`.gate2d.body_window` image.
        foreground: its patient threshold.
        column: keypoints (6, 2) of the column's bodies (at least two; the top one seeds the search).
        view_rows: the rows the view shows (:func:`.gate2d.assess_bodies`).
        limit: most bodies to place (the levels left above the top one).
        models: keypoints (6, 2) of the bodies whose mean picture is the template the candidates are compared with
            (default: the top one).

    Returns:
        keypoints (6, 2) of the bodies placed, one level apart, from the lowest to the highest.
    """
    from .gate2d import body_evidence

    evidence = body_evidence(image01, foreground, view_rows)
    chain = [np.asarray(k, dtype=np.float64).reshape(6, 2) for k in column]
    if len(chain) < 2:
        return []
    top = min(chain, key=lambda k: float(k[:, 1].mean()))
    template = body_patches(image01, np.array(models if models else [top]).reshape(-1, 6, 2)).mean(axis=0)
    added: List[np.ndarray] = []
    while len(added) < min(limit, MAX_ADDED):
        outline = np.asarray(models[0], dtype=np.float64) if models and not added else None
        candidates = np.array([c for c in candidates_above(chain, outline) if c[:, 1].min() >= 0]).reshape(-1, 6, 2)
        if len(candidates) == 0:
            return added
        scores = likeness(body_patches(image01, candidates), template)
        best = None
        for index in np.argsort(-scores, kind="stable")[:CHECKED_PER_LEVEL]:
            if scores[index] < MIN_LIKENESS:
                break
            if evidence(candidates[index]):
                best = candidates[index]
                break
        if best is None:
            return added
        added.append(best)
        chain.append(best)
    return added


@dataclass
class Continued:
    """What :func:`continue_column` did to a labelled column.

    Attributes:
        seed: index (in the column given) of the body the placed ones continue from.
        placed: the placed bodies as detections (score 0), from the lowest to the highest: the first is one level
            above ``seed``, each next one level above the one before.
        findings: their gate findings (each failing :data:`PLACED_CHECK`).
        gone: indices (in the column given) of the boxes that gave way to them.
    """

    seed: int
    placed: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    gone: List[int] = field(default_factory=list)


def continue_column(image01: np.ndarray, foreground: float, column: list, findings: list, levels_above,
                    view_rows: Optional[Tuple[int, int]] = None) -> Optional[Continued]:
    """Bodies placed above the top of a labelled spine column (:func:`continue_upwards`), checked by the gate.

    The search starts from the highest body that shows its endplate rim (``bone``): boxes above it that fail that
    check (at most :data:`.gate2d.MAX_END_RUN`, the run :func:`.gate2d.column_ends` would leave out anyway) are
    often drawn across a disc, half a level off; those below the highest placed body give way to the placed bodies.
    Placed bodies fail the :data:`PLACED_CHECK` hard check (not assessed, counted for the level). A placed body the
    gate does not keep in the column ends the run there.

    Args:
        image01: the :func:`.gate2d.body_window` image.
        foreground: its patient threshold.
        column: the column's detections (:class:`~VertebralFractureLib.keypoints.detector.Detection`).
        findings: their gate findings.
        levels_above: ``levels_above(index) -> int``: how many levels the view's level names leave above the body
            at ``index`` (none above T1).
        view_rows: the rows the view shows.

    Returns:
        what was placed, or None when nothing was.
    """
    from ..keypoints.chain import MIN_CHAIN
    from ..keypoints.detector import Detection
    from .gate2d import MAX_END_RUN, _decide, assess_bodies

    order = sorted(range(len(column)), key=lambda i: float(column[i].centre[1]))
    run = []
    for i in order[:MAX_END_RUN]:
        if findings[i].checks.get("bone", 0.0) >= 0.5:
            break
        run.append(i)
    rest = order[len(run):]
    if len(rest) < MIN_CHAIN:
        return None
    seed = rest[0]
    # the template: the highest bodies whose keypoints sit on their endplates and whose rim shows
    models = [column[i].keypoints for i in rest
              if all(findings[i].checks.get(name, 0.0) >= 0.5 for name in ("bone", "endplates"))][:TEMPLATE_BODIES]
    if not models:
        return None
    placed = continue_upwards(image01, foreground, [column[i].keypoints for i in rest], view_rows,
                              limit=int(levels_above(seed)), models=models)
    if not placed:
        return None
    highest = min(float(np.mean(k[:, 1])) for k in placed)
    gone = [i for i in run if float(column[i].centre[1]) >= highest]
    kept = [column[i] for i in range(len(column)) if i not in gone]
    checked = assess_bodies(image01, foreground, [d.keypoints for d in kept] + placed, view_rows)[len(kept):]
    result = Continued(seed=seed, gone=gone)
    for keypoints, finding in zip(placed, checked):
        if finding.checks.get("column", 0.0) < 0.5:
            break
        result.placed.append(Detection(keypoints=np.asarray(keypoints, dtype=np.float64), score=0.0, label="",
                                       label_confidence=0.0))
        result.findings.append(_decide(dict(finding.checks, **{PLACED_CHECK: 0.0}), finding.values))
    if not result.placed:
        return None
    top = min(float(d.centre[1]) for d in result.placed)
    result.gone = [i for i in gone if float(column[i].centre[1]) >= top]
    return result


#: Why a box above the column gave way to the placed bodies (:func:`continue_column`).
PLACED_REASON = ("drawn across the levels the column continues through (no endplate rim with darker discs): the "
                 "bodies placed one level apart take its place")
