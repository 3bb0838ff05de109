"""The quality-gate stage: every vertebra checked against the image before any grade is given.

Runs after the keypoints and before every score: each vertebra gets ``quality`` (the gate's confidence
0-1), ``checks`` (each check's score) and ``status``; one that the image does not support (no bone
where the body should be, no canal or posterior elements, cut by the field of view, a cervical level,
an implausible size, keypoints off the endplates) is ``not_assessed`` with the gate's reason and gets
no Genant grade (:mod:`VertebralFractureLib.quality.gate` gives the rule). A vertebra whose measured
heights would give a grade >= 1 is graded only when its keypoints sit on endplate edges
(:data:`ENDPLATES_FOR_A_GRADE`): a deformity is a claim that needs the strongest evidence. On slices thicker along
the body than the endplate check resolves (over 3 mm), a height loss under two voxel extents is not reported either
(:func:`withhold_unresolved_losses`), nor a crush measured against a neighbour too tall for its level
(:func:`withhold_crushes_against_implausible_neighbours`), nor a loss that the image's own noise can make
(:func:`withhold_losses_within_noise`: the body measured again on noisy copies, :mod:`.noise`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from ..levels import level_index
from ..progress import Progress
from ..schema import EXACT_SOURCES, SpineResult
from ..stage import Analysis, RunsWithKeypoints, StageContext

#: Endplate score a vertebra needs before a height loss (grade >= 1) is reported. The score is the mean over the
#: six keypoints of 1 within 2 mm of an endplate edge, falling to 0 at 4 mm (:mod:`.checks`). A grade-1 loss is
#: 20 % of a 20-30 mm body, 4-6 mm: two keypoints 2 mm off the same segment already make that much, so a
#: deformity is only reported when (almost) every keypoint sits on an edge; otherwise "not assessed".
ENDPLATES_FOR_A_GRADE = 0.9


def withhold_grades(result: SpineResult, unsupported: Callable[[Any], Optional[str]], record: bool = False,
                    graded_only: bool = True) -> None:
    """Mark "not assessed" every graded vertebra (grade >= 1) for which ``unsupported`` gives a reason.

    Repeated until stable, since removing a vertebra changes its neighbours' reference heights. ``record``: keep
    the withheld grade in ``extra`` (:data:`~VertebralFractureLib.verdict.UNCONFIRMED_GRADE_KEY`), for a height
    loss that may be real but could not be confirmed (the verdict asks for a look when a validated learned score
    agrees); not for a normal shape that only looks graded (the lordotic L5). ``graded_only`` False: grade 0 too.
    """
    from ..verdict import UNCONFIRMED_GRADE_KEY

    for _ in range(len(result.vertebrae)):
        changed = False
        for vertebra in result.vertebrae:
            measure = vertebra.measure
            if vertebra.assessed and measure is not None and (measure.grade >= 1 or not graded_only):
                reason = unsupported(vertebra)
                if reason:
                    if record:
                        vertebra.extra[UNCONFIRMED_GRADE_KEY] = int(measure.grade)
                    vertebra.not_assessed(reason)
                    changed = True
        if not changed:
            return
        result.recompute()


def withhold_unsupported_grades(result: SpineResult) -> None:
    """Mark "not assessed" every graded vertebra whose keypoints are not clearly on the endplates.

    Not clearly on them: the gate's ``endplates`` score below :data:`ENDPLATES_FOR_A_GRADE`, or (CT) a keypoint of
    the model put on its endplate's traced line because its own column showed another edge
    (:data:`~VertebralFractureLib.keypoints.stage.LINE_PLACED_KEY`), or one that crossed a neighbouring body's
    facing point on thick slices (:data:`~VertebralFractureLib.keypoints.stage.CROSSED_KEY`, moved to meet it where
    the crossing lies within one band): the slices did not separate the two endplates, so the two bodies' heights
    there are not measured apart, and a crush or a wedge between two such bodies is what a shared border placed
    wrong makes.
    """
    from ..keypoints.stage import CROSSED_KEY, LINE_PLACED_KEY

    def off_the_endplates(vertebra) -> Optional[str]:
        placed = vertebra.extra.get(LINE_PLACED_KEY) if vertebra.source == "model" else None
        if placed:
            return (f"{', '.join(placed)} placed on the endplate traced across the body (the keypoint's own column "
                    f"shows another edge): the measured height loss (grade {vertebra.measure.grade}) cannot be "
                    "confirmed")
        crossed = vertebra.extra.get(CROSSED_KEY) if vertebra.source == "model" else None
        if crossed:
            return (f"{', '.join(crossed)} crossed the neighbouring body's endplate by up to "
                    f"{max(crossed.values()):.1f} mm (the slices do not separate the two): the measured height loss "
                    f"(grade {vertebra.measure.grade}) cannot be confirmed")
        score = vertebra.checks.get("endplates")
        if score is None or score >= ENDPLATES_FOR_A_GRADE:
            return None
        return (f"keypoints not clearly on the endplates (score {score:.2f}): the measured height loss "
                f"(grade {vertebra.measure.grade}) cannot be confirmed")

    withhold_grades(result, off_the_endplates, record=True)


def withhold_grades_that_depend_on_crossed_points(result: SpineResult) -> None:
    """Mark "not assessed" a body whose grade from its shape changes when its crossed points are made to meet.

    On thick slices the facing endplate points of two neighbouring bodies that crossed are moved to meet half-way
    (:mod:`VertebralFractureLib.keypoints.facing_endplates`); the body's G before that is kept
    (:data:`~VertebralFractureLib.keypoints.stage.CROSSED_G_KEY`). Where the Genant grade of that G and of the G
    after differ, the grade depends on where a border the slices do not show lies, and neither is reported: a
    normal grade as much as a fracture (a real grade-2 T10 of the VerSe masks drawn as a 3 mm CT,
    ``benchmarks/bench_real_shapes.py``, read grade 1 with its own points and 0 once they met its neighbours').
    The larger grade is recorded as unconfirmed when it is 1 or more.
    """
    from ..genant import grade_from_reduction
    from ..keypoints.stage import CROSSED_G_KEY
    from ..verdict import UNCONFIRMED_GRADE_KEY

    def depends_on_crossed_points(vertebra) -> Optional[str]:
        apart = vertebra.extra.get(CROSSED_G_KEY) if vertebra.source == "model" else None
        if apart is None:
            return None
        G = float(vertebra.measure.G)
        grades = grade_from_reduction(1.0 - float(apart)), grade_from_reduction(1.0 - G)
        if grades[0] == grades[1]:
            return None
        if max(grades) >= 1:
            vertebra.extra[UNCONFIRMED_GRADE_KEY] = int(max(grades))
        return (f"its grade depends on where the endplates it shares with a neighbour lie (the slices do not "
                f"separate them): G {float(apart):.2f} (grade {grades[0]}) with its own borders, {G:.2f} (grade "
                f"{grades[1]}) with the crossed ones met half-way")

    withhold_grades(result, depends_on_crossed_points, graded_only=False)


#: Levels whose normal shape is a lordotic wedge, shortest at the back: in healthy adults L5 is 30.3 +- 1.9 mm high
#: anteriorly and 26.3 +- 1.9 mm posteriorly (CT of 300+ adults, Int J Spine Surg, "measurements at the L5 level";
#: posterior / anterior 0.87, so a normal L5 reaches the 20 % of a grade 1 by its shape alone), and the radiographic
#: morphometry standards stop at L4 for that reason (T4-L4: Skeletal Radiol 1998;27:380-4; the Malmö / Montceau /
#: Graz survey of vertebral height ratios). A transitional L6 is the lowest mobile body and shaped like L5.
LORDOTIC_WEDGE_LEVELS = ("L5", "L6")
#: Reason given to a posterior-shortest lumbosacral body that its shape would grade.
LORDOTIC_WEDGE_REASON = ("its posterior height is the shortest, the normal lordotic wedge of the lowest lumbar body "
                         "(posterior about 0.87 of anterior): no grade from its shape")


def withhold_lordotic_wedges(result: SpineResult) -> None:
    """Mark "not assessed" an L5 (or L6) graded only because its posterior height is its shortest.

    An anterior wedge or a biconcave L5 (the anterior or the middle height shortest) keeps its grade, and so does
    one whose grade comes from its size against its neighbours (a crush beyond what its shape gives).
    """
    from ..genant import grade_from_reduction

    def lordotic(vertebra) -> Optional[str]:
        if vertebra.label not in LORDOTIC_WEDGE_LEVELS:
            return None
        measure = vertebra.measure
        from_shape = grade_from_reduction(measure.reduction) >= measure.grade
        return LORDOTIC_WEDGE_REASON if from_shape and measure.heights[2] < min(measure.heights[:2]) else None

    withhold_grades(result, lordotic)


def withhold_crushes_against_implausible_neighbours(result: SpineResult) -> None:
    """Mark "not assessed" a crush grade whose expected height comes from a neighbour too tall for its level.

    A detector's crush grade (:func:`VertebralFractureLib.genant.crush_reductions`: a body of normal shape smaller
    than its neighbours) takes the maximal height of the nearest assessed neighbour above and below (within
    ``genant.MAX_NEIGHBOUR_GAP`` levels) as the height it should have. Where such a neighbour's own maximal height
    lies beyond the plateau of the size check (``checks.SIZE_RATIO``: above 1.45 times its level's published
    normal, already more than stature and sex explain, though under the 1.8 at which the gate withholds it), its box
    may span a disc or two bodies (5 mm slices), and the crush it implies is not confirmed: 24 generated spines at 5
    mm slices (``bench_generated.py --slice-mm 5``) graded a normal T9 (G 0.92) 2 against a T10 box 32 mm tall (1.6
    times its normal). The neighbour itself keeps its own grade.
    """
    from ..genant import MAX_NEIGHBOUR_GAP
    from .checks import SIZE_RATIO, normal_size

    def implausible_reference(vertebra) -> Optional[str]:
        if vertebra.measure.type != "crush" or vertebra.source in EXACT_SOURCES:
            return None
        assessed = [v for v in result.vertebrae if v.assessed and v.measure is not None]
        index = next(i for i, v in enumerate(assessed) if v is vertebra)
        position = level_index(vertebra.label)
        nearest = [next((v for v in side if 0 < abs(level_index(v.label) - position) <= MAX_NEIGHBOUR_GAP), None)
                   for side in (assessed[:index][::-1], assessed[index + 1:])]
        for neighbour in filter(None, nearest):
            normal = normal_size(neighbour.label)
            tallest = max(neighbour.measure.heights)
            if normal is not None and tallest > SIZE_RATIO[2] * normal[0]:
                return (f"its size is compared with {neighbour.label}, whose height {tallest:.0f} mm is "
                        f"{tallest / normal[0]:.1f} times its level's normal ({normal[0]:.0f} mm): the crush "
                        f"(grade {vertebra.measure.grade}) cannot be confirmed")
        return None

    withhold_grades(result, implausible_reference, record=True)


def withhold_shape_grades_against_an_implausible_height(result: SpineResult) -> None:
    """Mark "not assessed" a grade of 2 or 3 from a body's shape whose tallest height is implausible for its level.

    Genant's G (Pisov et al. 2020, eq. 1) compares a body's shortest height with its tallest. Where the tallest lies
    beyond the plateau of the size check (``checks.SIZE_RATIO``: above 1.45 times the level's published posterior
    height, more than stature and sex explain, though under the 1.8 at which the gate withholds it), a keypoint of
    that height may lie in the disc or the next body, and the loss measured against it is not confirmed. In a
    compression fracture the tallest height is the intact one, about the level's normal. Seen on the real abdominal CT
    with a colon of oral contrast 44 mm across drawn beside L3-L5 (``benchmarks/bench_colon_grid.py``): its L1 (named
    L2 there, "levels uncertain"), whose posterior superior point the detector puts in the disc above on the unchanged
    CT as well, measured 39 mm posterior (1.56 times L2's normal) against 25 mm anterior and 20 mm middle, G 0.52,
    and was graded 3.
    """
    from .checks import SIZE_RATIO, normal_size

    def implausible_height(vertebra) -> Optional[str]:
        measure = vertebra.measure
        if measure.grade < 2 or vertebra.source in EXACT_SOURCES:
            return None
        normal = normal_size(vertebra.label)
        tallest = max(measure.heights)
        if normal is None or tallest <= SIZE_RATIO[2] * normal[0]:
            return None
        return (f"its tallest height, {tallest:.0f} mm, is {tallest / normal[0]:.1f} times its level's normal "
                f"({normal[0]:.0f} mm): a keypoint may lie beyond the body, and the measured height loss (grade "
                f"{measure.grade}) cannot be confirmed")

    withhold_grades(result, implausible_height, record=True)


#: On slices thicker along a body's axis than the endplate check's decisive limit
#: (:data:`~VertebralFractureLib.quality.checks.ENDPLATE_DECISIVE_MM`), a height loss is reported only when it is at
#: least this many voxel extents along that axis. There a disc thinner than a slice merges with both endplates and
#: each endplate is placed at the merged band's centre, up to half a voxel from the true border
#: (:func:`VertebralFractureLib.keypoints.refine.endplate_edge`), so each height can be a voxel off and a loss, the
#: difference of two heights (or of a height and the expected one), up to two. Measured on 24 generated spines
#: resampled to 5 mm slices (``bench_generated.py --slice-mm 5``): height error 3.7 mm against 1.0 at the generator's
#: slices, and a normal T12 graded 2 (G 0.75, true 0.90).
UNRESOLVED_LOSS_VOXELS = 2.0


def height_loss_mm(measure) -> float:
    """The height loss (mm) behind a Genant grade.

    The shortest height against the tallest, or against the height expected from the normal neighbours when the
    grade comes from the size deficit (:mod:`VertebralFractureLib.genant`, ``1 - G * (1 - max(0, s -
    SIZE_TOLERANCE))``, solved for the deficit ``s``).
    """
    import math

    from ..genant import SIZE_TOLERANCE

    heights = [float(h) for h in measure.heights]
    tallest, shortest = max(heights), min(heights)
    loss = tallest - shortest
    reduction = measure.neighbour_reduction
    if reduction is not None and math.isfinite(reduction) and measure.G > 0:
        deficit = SIZE_TOLERANCE + 1.0 - (1.0 - float(reduction)) / float(measure.G)
        if SIZE_TOLERANCE < deficit < 1.0:
            loss = max(loss, tallest / (1.0 - deficit) - shortest)
    return loss


def withhold_unresolved_losses(result: SpineResult, geometry) -> None:
    """Mark "not assessed" every graded vertebra (detector keypoints) whose height loss its slices cannot resolve.

    Where the voxel extent along the body's superior axis exceeds the endplate check's decisive limit, a loss under
    :data:`UNRESOLVED_LOSS_VOXELS` voxels is within what the slices alone can make; the grade is recorded as
    unconfirmed (the verdict asks for a look when a validated learned score agrees). A loss that large (a 5 mm slice:
    10 mm, a crush or a severe wedge of a 25 mm body) is reported.

    Args:
        result: the analysis result, measured.
        geometry: the CT's :class:`~VertebralFractureLib.geometry.ImageGeometry`.
    """
    from .checks import ENDPLATE_DECISIVE_MM, BodyFrame

    def unresolved(vertebra) -> Optional[str]:
        if vertebra.source != "model":
            return None
        try:
            voxel = geometry.voxel_extent_along(BodyFrame.from_keypoints(vertebra.keypoints).s)
        except ValueError:
            return None
        loss = height_loss_mm(vertebra.measure)
        if voxel <= ENDPLATE_DECISIVE_MM + 1e-6 or loss >= UNRESOLVED_LOSS_VOXELS * voxel:
            return None
        return (f"slices {voxel:.1f} mm thick along the body: a height loss of {loss:.1f} mm (grade "
                f"{vertebra.measure.grade}) is within what they can make, so it cannot be confirmed")

    withhold_grades(result, unresolved, record=True)


def withhold_losses_within_noise(result: SpineResult, volume, geometry, starts: dict) -> None:
    """Mark "not assessed" every graded body (detector keypoints) whose height loss the image's noise can make.

    Each such body is measured again on noisy copies of its box (:func:`.noise.remeasured_heights`, from the points
    the detector gave, ``starts``); its loss (the reduction its grade comes from: 1 - G, or the crush against its
    neighbours) must exceed the grade-1 threshold (20 %) by :func:`.noise.confirm_factor` times the root mean
    square of the re-measured losses' differences from it (their spread and their shift together), or the grade is
    withheld and recorded as unconfirmed (:mod:`.noise` gives the method and the case).

    Args:
        result: the analysis result after the gate's other withholding rules.
        volume: the canonical CT ``[k, j, i]``.
        geometry: its :class:`~VertebralFractureLib.geometry.ImageGeometry`.
        starts: level -> (6, 3) LPS points the refinement started from (``Analysis.detected_points``).
    """
    from ..genant import GRADE_THRESHOLDS, grade_from_reduction
    from .noise import NOISE_DRAWS, confirm_factor, remeasured_heights

    measured: dict = {}

    def within_noise(vertebra) -> Optional[str]:
        start = starts.get(vertebra.label)
        if vertebra.source != "model" or start is None:
            return None
        if vertebra.label not in measured:
            measured[vertebra.label] = remeasured_heights(volume, geometry, start)
        again, sigma = measured[vertebra.label]
        measure = vertebra.measure
        if not np.isfinite(sigma):
            return (f"the image's noise could not be measured around the body (its box is under 3 x 3 voxels "
                    f"across): the height loss (grade {measure.grade}) cannot be confirmed")
        if len(again) < NOISE_DRAWS // 2:
            return (f"measured again with the image's noise ({sigma:.0f} HU) added, {NOISE_DRAWS - len(again)} of "
                    f"{NOISE_DRAWS} copies gave no body: the height loss (grade {measure.grade}) cannot be confirmed")
        if grade_from_reduction(measure.reduction) >= measure.grade:
            loss, losses = measure.reduction, 1.0 - again.min(axis=1) / again.max(axis=1)
        else:  # a crush against the neighbours' height (genant.crush_reductions)
            loss = float(measure.neighbour_reduction)
            expected = max(measure.heights) / (1.0 - loss)
            losses = 1.0 - again.max(axis=1) / expected
        # how far from the measured loss the re-measurements land: their spread and their shift together
        spread = float(np.sqrt(np.mean((losses - loss) ** 2)))
        if loss - confirm_factor(len(losses)) * spread >= GRADE_THRESHOLDS[0]:
            return None
        return (f"the image's noise ({sigma:.0f} HU) makes the height loss uncertain: {loss:.0%} measured, "
                f"re-measured {float(np.mean(losses)):.0%} +- {spread:.0%} with as much noise added, not clearly "
                f"over {GRADE_THRESHOLDS[0]:.0%}: the grade ({measure.grade}) cannot be confirmed")

    withhold_grades(result, within_noise, record=True)


#: Least distance (mm) the scan must show beyond a body's keypoint box on every side for a withheld loss to ask for a
#: look on its own: the disc beyond each endplate (thoracic 4-6 mm, lumbar 8-12 mm). A body the scan's end cuts
#: through is boxed against that end (a real crop whose first slices hold the lowest 10 mm of L2: its box reached 3.5
#: mm from the crop's top and measured grade 3).
RESOLVED_LOSS_CLEARANCE_MM = 5.0


def mark_resolved_unconfirmed_losses(result: SpineResult, geometry) -> None:
    """Record, for every withheld height loss, whether the CT's slices resolve the body's endplates.

    A loss withheld because the keypoints were not clearly on the endplates
    (:func:`withhold_unsupported_grades`) is a claim the gate could not confirm; on slices that resolve the
    endplates (voxel extent along the body's superior axis at most
    :data:`~VertebralFractureLib.keypoints.refine.CT_RESOLVED_MM`) the measured points lie within a voxel or two of
    what the image shows, and a loss of grade 2-3 there is asked to be looked at
    (:data:`~VertebralFractureLib.verdict.UNCONFIRMED_RESOLVED_KEY`) when the scan shows
    :data:`RESOLVED_LOSS_CLEARANCE_MM` beyond the body on every side. On thicker slices the crossed and merged endplates
    make losses that large from normal bodies (generated spines at 5 mm: 54 of 168 normal bodies), so nothing is
    recorded there.

    Args:
        result: the analysis result after the gate's withholding rules.
        geometry: the CT's :class:`~VertebralFractureLib.geometry.ImageGeometry`.
    """
    from ..keypoints.refine import CT_RESOLVED_MM
    from ..verdict import UNCONFIRMED_GRADE_KEY, UNCONFIRMED_RESOLVED_KEY
    from .checks import BodyFrame, check_field_of_view

    for vertebra in result.vertebrae:
        if vertebra.assessed or vertebra.source != "model" or UNCONFIRMED_GRADE_KEY not in vertebra.extra:
            continue
        try:
            frame = BodyFrame.from_keypoints(vertebra.keypoints)
        except ValueError:
            continue
        resolved = geometry.voxel_extent_along(frame.s) <= CT_RESOLVED_MM + 1e-6
        in_scan = check_field_of_view(geometry, frame, RESOLVED_LOSS_CLEARANCE_MM).score >= 1.0
        vertebra.extra[UNCONFIRMED_RESOLVED_KEY] = bool(resolved and in_scan)


class QualityGateStage(RunsWithKeypoints):
    """Image checks per vertebra: status, reason and confidence."""

    name = "quality_gate"
    title = "checking every vertebra against the image"
    share = 0.05

    def run(self, analysis: Analysis, context: StageContext, progress: Progress) -> None:
        """Set ``status``, ``status_reason``, ``quality`` and ``checks`` of every vertebra, then re-measure."""
        import SimpleITK as sitk

        from ..implants import CEMENT_MIN_MM3
        from ..verdict import TREATED_KEY
        from .gate import NOT_ASSESSED, assess_vertebrae

        result = analysis.result
        if not result.vertebrae or analysis.canonical is None:
            return
        progress(0.0, self.title)
        volume = sitk.GetArrayViewFromImage(analysis.canonical)
        findings = assess_vertebrae(volume, analysis.canonical_geometry, result.vertebrae)
        for vertebra in result.vertebrae:
            finding = findings[vertebra.label]
            vertebra.quality = finding.confidence
            vertebra.checks = dict(finding.checks)
            if finding.status == NOT_ASSESSED:
                vertebra.not_assessed(finding.reason or "the image does not support this vertebra")
            if (finding.details or {}).get("metal", {}).get("cement_mm3", 0.0) >= CEMENT_MIN_MM3:
                vertebra.extra[TREATED_KEY] = "bone cement"
        result.recompute()
        withhold_grades_that_depend_on_crossed_points(result)
        withhold_unsupported_grades(result)
        withhold_unresolved_losses(result, analysis.canonical_geometry)
        withhold_crushes_against_implausible_neighbours(result)
        withhold_shape_grades_against_an_implausible_height(result)
        withhold_lordotic_wedges(result)
        withhold_losses_within_noise(result, volume, analysis.canonical_geometry, analysis.detected_points)
        mark_resolved_unconfirmed_losses(result, analysis.canonical_geometry)
        kept = sum(1 for v in result.vertebrae if v.assessed)
        progress(1.0, f"{kept} of {len(result.vertebrae)} vertebrae assessed")
