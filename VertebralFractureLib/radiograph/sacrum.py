"""Lumbar levels on a lateral view anchored on the sacrum: which detected body is L5.

The Gartland et al. 2025 heatmaps know T4 ... L4 only and cannot tell a thoracic from a lumbar body on
a view without context (on the 20 real sagittal CT slices of ``covid_sagittal`` every lumbar level was
off by one to four). A radiologist counts lumbar levels upwards from the sacrum (Genant et al. 1993: the
lumbosacral junction is the reference of a lateral lumbar reading); this module does the same with the
bodies the 2D analysis keeps (:mod:`.gate2d`), on the :func:`~.gate2d.body_window` image. Lengths are in
*levels*: :data:`LEVEL_PER_HEIGHT` times the median height of the lowest :data:`LEVEL_BODIES` trusted bodies (no
pixel size needed).

**L5 test** (:func:`test_l5`), on a fan of rays from the body centre around its own axis
(:func:`polar_map`; radii counted from its inferior endplate). The sacrum below L5 shows three things a
mobile body below a lumbar body does not:

1. *bone right below the disc* (the S1 segment, rays 0-30 degrees posterior, 0.3-0.6 level);
2. *soft tissue straight ahead one level further* (rays -15 ... +5 degrees, 0.8-1.5 level): the sacrum
   turns posteriorly (lumbosacral angle, sacral kyphosis), so the extrapolated column leaves its anterior
   surface into the pelvis, while below a mobile body the same rays run through the next bodies;
3. *a long bony mass turning posteriorly*: on rays 15-60 degrees posterior the bone is brighter than that
   soft tissue, and on some ray 10-60 degrees posterior it stays so without a gap for two levels (S1-S3).

Both contrasts are at least :data:`MIN_CONTRAST` of the window; the test uses no fixed HU or grey value,
so a CT slice in HU and an 8-bit export are handled alike. Intensity alone (bone vs disc) failed: the
trabecular bone of these elderly spines is barely brighter than the discs (0.45 vs 0.40 of the window,
a first attempt that tracked discs along the column, removed after it found no true sacrum on the real
slices); the soft tissue of the pelvis
in front of the sacrum is far darker than either.

**Candidates** (:func:`sacral_anchor`): every detection of the column from the third-lowest trusted body
down (trusted: in the column, in line, bone rim with darker discs, in the patient; :func:`trusted_bodies`),
the untrusted ones (boxes on L4 / L5 whose rim the bone check missed) only down to :data:`MAX_WALK`
levels below the lowest trusted body, all with a height plausible for the column (:data:`HEIGHT_RATIO`).
An undetected body is never named. The first candidate, from the top, that passes is L5. No anchor when
none passes, when any ray of the fan leaves the image (:data:`MIN_IN_VIEW`: the sacrum is judged only where
the whole of S1-S3 the test looks at is in the picture) or the patient, or when a trusted body lies more than
:data:`BELOW_L5_LEVELS` below the L5 found (the column goes on).

**Two readers** (:func:`_choose`): every candidate is also scored by the lumbosacral classifier (:mod:`.lumbosacral`,
learned on generated spines with a curved sacrum and a pelvis in front of it, read as sagittal CT slices and as
radiographs, and on real sagittal slices). The test above names the first candidate that passes; the classifier names
the candidate it scores highest, if that reaches :data:`~.lumbosacral.ANCHOR_PROBABILITY` with the whole region below
it in the image and in the patient. When both name a body and the bodies differ, there is no anchor (levels
uncertain); when the classifier names one, it is L5; when only the test names one, the classifier has not confirmed
it and there is no anchor either (the test speaks alone only when no classifier is given, ``model=False``); on an 8-bit
picture whose bone is clipped to white (a soft-tissue window, :func:`~.gate2d.bone_clipped`) the classifier does not
name L5 alone (2026-12-07: it named thoracic bodies there, docs/findings.md "Exports windowed for soft tissue").
Why: on 24 held-out generated films with that sacrum the test alone named the wrong body on 11 (lordotic L5 taken for
the sacrum), every level then wrong with certainty; and on the real sagittal slices as JPEG exports (quality 70) the
test alone anchored three slices on bodies the classifier scored 0.00-0.29, a thoracic slice with no sacrum in view
among them, every level named wrong (2026-12-05, sixth session; docs/findings.md "8-bit exports: the detector's own
window, and L5 confirmed by the classifier").

**Count** (:func:`count_levels`): the other detections are named by the whole number of levels between
neighbours (their distance over :data:`LEVEL_PER_HEIGHT` times their mean height, :data:`STEP_RATIO`);
past a distance that fits no single whole number the count goes on but those levels are not certain.
The count does not step through an untrusted detection that lies off the line of the trusted bodies beside it
(:data:`OFF_LINE_DEPTHS`: a box in front of the column); a count that reaches the neck names C7 and above (never
graded).
Detections counted more than one level below L5 (S2 and below, boxes in the pelvis, or an S1 box whose
distance from L5 fits no whole number of levels) are left out; none of them would be graded.

Measured (``benchmarks/bench_sagittal.py``, the 12 lumbar-including real slices, plus the 8 thoracic ones
with ``--all``): HU, anchors given on 6 of the 8 slices with a sacrum, all 6 right, none on the 4 slices
without a sacrum in plane nor on the 8 thoracic ones; as 8-bit PNG without pixel size, 4 given, 4 right.
The rules were written from the anatomy and then checked on these same images (the continuity rule 3 was
added after a paramedian slice, A002304_19001231, gave a false anchor): they are not an independent
validation, and the margins are small (continuity 0.08 on the weakest true sacrum, 0.03 on the false
one). On 24 held-out generated views (``benchmarks/bench_radiograph.py``), the test run on the few rays left at
the lower edge of a cropped view gave a false anchor on 4 views (every level named wrong with certainty;
level accuracy 0.80); with the whole fan required in the image none (0.97), the real figures unchanged.
A real film cut less than about two levels below L5 is left "levels uncertain". With the lumbosacral classifier as a
second reader (2026-12-05) the real figures are unchanged in HU (one more anchor, right, as PNG); on 24 held-out
generated spines with a realistic sacrum (``benchmarks/bench_lumbosacral.py``) the test alone anchored 4 slices (3
wrong) and 19 films (11 wrong), the two readers 12 slices (1 wrong) and 16 films (4 wrong: the test alone where the
classifier scores no candidate >= 0.5); with the classifier's confirmation required (sixth session) 12 films, 0 wrong
(with a clinical look 15 -> 12 anchors, 1 -> 0 wrong), the real slices held out unchanged in HU (92 of 113 levels, 7
anchors, all confirmed at 0.98-1.00) and no false anchor as PNG, JPEG or framed. Missed: low-contrast
pelvis (A067967_19001231: soft tissue ahead as bright as S1) and a sacrum only
0.099 brighter than the soft tissue (A062055_19001127).
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: Centre-to-centre distance of neighbouring bodies in body heights: body + disc is 1.2-1.45 body
#: heights (Panjabi et al. 1991, 1992), so one level is taken as 1.33 h.
LEVEL_PER_HEIGHT = 1.33
#: The level unit is taken from the lowest this many trusted bodies (the lumbar ones when the sacrum is in view): body
#: heights grow caudally by a few per cent per level (Panjabi et al. 1991, 1992), so over a column reaching up to T1 the
#: median of all bodies is a thoracic height, a level too short for the rays below L5.
LEVEL_BODIES = 5
#: Fan of ray directions (degrees from the column axis, + = posterior) and radial samples (levels).
FAN_DEG = np.arange(-20.0, 70.1, 2.0)
RADII = np.linspace(0.0, 2.6, 131)
#: Half width (levels) of the strip averaged across each ray.
RAY_HALF_WIDTH = 0.1
#: Regions of the fan, radii in levels after the body's inferior endplate. A disc is 0.2-0.45 body
#: heights (0.15-0.35 level) thick, so the S1 segment below the L5/S1 disc is looked for 0.3-0.6 level
#: after the endplate, on rays turned 0-30 degrees posteriorly (the L5/S1 disc is wedge-shaped and S1 is
#: tilted forward by the lumbosacral angle; segmental L5/S1 lordosis about 20 degrees: Damasceno et al.
#: 2006).
S1_RANGE = (0.3, 0.6)
S1_FAN_DEG = (0.0, 30.0)
#: Straight ahead, one level further (0.8-1.5 level after the endplate, rays -15 ... +5 degrees): below a
#: mobile lumbar body these rays run through the next body and the one after it; below L5 they leave the
#: front of the sacrum, which turns posteriorly (lumbosacral angle and sacral kyphosis; Bogduk 2005)
#: into the soft tissue of the pelvis.
EXIT_FAN_DEG = (-15.0, 5.0)
EXIT_RANGE = (0.8, 1.5)
#: The sacrum itself: on rays turned 15-60 degrees posteriorly, 0.4-1.3 level after the endplate (S1 and
#: the upper S2, 35-45 mm of bone in line).
SACRUM_FAN_DEG = (15.0, 60.0)
SACRUM_RANGE = (0.4, 1.3)
#: Least contrast (window units) of bone (the S1 segment, the sacrum) over the soft tissue straight ahead:
#: a tenth of the body window is about 100 HU on a CT trunk window (-150 ... 900 HU), the difference
#: between cancellous bone (>= 150 HU, less in osteoporosis) and muscle or bowel (40-60 HU); fat is darker.
MIN_CONTRAST = 0.10
#: The sacrum is long: S1 to S3, each 20-30 mm tall and fused (Bogduk 2005), are about two levels of bone. On
#: some ray turned 10-60 degrees posteriorly, every stretch of a quarter level from 0.3 to 2.0 levels after
#: the endplate must stay at least half :data:`MIN_CONTRAST` above the soft tissue ahead: a thin paramedian
#: cut of a body with soft tissue below it (the column leaving the slice) has a gap there.
SACRUM_LENGTH = (0.3, 2.0)
SACRUM_LENGTH_FAN_DEG = (10.0, 60.0)
SACRUM_STRETCH = 0.25
MIN_SACRUM_CONTINUITY = 0.5 * MIN_CONTRAST
#: How many levels below the lowest trusted body an untrusted detection may lie and still be tested as L5.
MAX_WALK = 3
#: Least fraction of the fan (every ray of the test, from the endplate to the end of the sacrum's length) that
#: must lie inside the image: the sacrum is judged only where it is seen. A body at the lower edge of a cropped
#: view (a thoracolumbar film, a cropped DRR) had the test run on the few rays left in the image and passed
#: on 4 of 24 generated views, every level named wrong with certainty.
MIN_IN_VIEW = 1.0


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    from scipy.ndimage import map_coordinates

    points = np.asarray(points, dtype=np.float64)
    shape = points.shape[:-1]
    flat = points.reshape(-1, 2)
    values = map_coordinates(image, [flat[:, 1], flat[:, 0]], order=1, mode="constant", cval=np.nan)
    return values.reshape(shape)


def _unit(vector: np.ndarray) -> np.ndarray:
    return np.asarray(vector, dtype=np.float64) / max(float(np.linalg.norm(vector)), 1e-9)


def _turn(axis: np.ndarray, degrees: float, posterior: float) -> np.ndarray:
    """``axis`` (``[column, row]``) rotated by ``degrees`` towards ``posterior`` (+1: increasing column)."""
    angle = -np.radians(degrees) * posterior
    c, s = np.cos(angle), np.sin(angle)
    return np.array([axis[0] * c - axis[1] * s, axis[0] * s + axis[1] * c])


def polar_map(image01: np.ndarray, centre: np.ndarray, axis: np.ndarray, level: float,
              posterior: float = 1.0) -> np.ndarray:
    """(len(FAN_DEG), len(RADII)) mean intensity along rays from ``centre`` fanned around ``axis``.

    Args:
        image01: the body-windowed image.
        centre: ``[column, row]`` start of the rays.
        axis: unit vector down the column.
        level: one level (centre-to-centre distance) in pixels; the radii are in levels.
        posterior: +1 when posterior is increasing column (column 0 anterior), -1 for a mirrored view.

    """
    out = np.empty((len(FAN_DEG), len(RADII)))
    across = np.linspace(-RAY_HALF_WIDTH, RAY_HALF_WIDTH, 5) * level
    for row, degrees in enumerate(FAN_DEG):
        d = _turn(axis, float(degrees), posterior)
        normal = np.array([-d[1], d[0]])
        points = (centre[None, None] + (RADII * level)[:, None, None] * d[None, None]
                  + across[None, :, None] * normal[None, None])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[row] = np.nanmean(_sample(image01, points), axis=1)
    return out


def _region_all(polar: np.ndarray, fan: Tuple[float, float], radii: Tuple[float, float]) -> np.ndarray:
    """The samples of ``polar`` in the fan and radii given, NaN (outside the image) included."""
    rows = (FAN_DEG >= fan[0]) & (FAN_DEG <= fan[1])
    cols = (RADII >= radii[0]) & (RADII <= radii[1])
    return polar[rows][:, cols]


def _region(polar: np.ndarray, fan: Tuple[float, float], radii: Tuple[float, float]) -> np.ndarray:
    """The samples of ``polar`` in the fan and radii given that lie inside the image."""
    values = _region_all(polar, fan, radii)
    return values[np.isfinite(values)]


@dataclass
class L5Test:
    """The measurements of one "is this body L5?" test (window units; radii in levels from the body centre)."""

    s1: float
    exit: float
    sacrum: float
    sacrum_deg: float
    continuity: float
    passed: bool
    why: str
    in_view: float = 1.0

    def as_dict(self) -> Dict[str, float]:
        """Rounded numbers for the report."""
        return {"s1": round(self.s1, 3), "exit": round(self.exit, 3), "sacrum": round(self.sacrum, 3),
                "sacrum_deg": round(self.sacrum_deg, 1), "continuity": round(self.continuity, 3),
                "in_view": round(self.in_view, 3)}


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else float("nan")


def test_l5(image01: np.ndarray, centre: np.ndarray, axis: np.ndarray, level: float, inferior: float,
            posterior: float = 1.0) -> L5Test:
    """Is the body at ``centre`` L5, the last mobile body, with the sacrum below it? (see the module doc).

    Args:
        image01: the body-windowed image.
        centre: the body centre ``[column, row]``.
        axis: unit vector along the body (superior to inferior endplate).
        level: one level in pixels.
        inferior: distance (levels) from the centre to the inferior endplate.
        posterior: +1 when posterior is increasing column.

    """
    polar = polar_map(image01, centre, axis, level, posterior)
    tested = _region_all(polar, (EXIT_FAN_DEG[0], max(SACRUM_FAN_DEG[1], SACRUM_LENGTH_FAN_DEG[1])),
                         (inferior, float(RADII[-1])))
    in_view = float(np.isfinite(tested).mean()) if tested.size else 0.0
    s1 = _median(_region(polar, S1_FAN_DEG, (inferior + S1_RANGE[0], inferior + S1_RANGE[1])))
    ahead = _median(_region(polar, EXIT_FAN_DEG, (inferior + EXIT_RANGE[0], inferior + EXIT_RANGE[1])))
    sacrum, sacrum_deg = float("-inf"), float("nan")
    for degrees in np.arange(SACRUM_FAN_DEG[0], SACRUM_FAN_DEG[1] + 0.1, 5.0):
        value = _median(_region(polar, (degrees - 5.0, degrees + 5.0),
                                (inferior + SACRUM_RANGE[0], inferior + SACRUM_RANGE[1])))
        if value > sacrum:
            sacrum, sacrum_deg = value, float(degrees)
    continuity = float("-inf")
    starts = np.arange(SACRUM_LENGTH[0], SACRUM_LENGTH[1] - SACRUM_STRETCH + 1e-6, 0.05)
    for degrees in np.arange(SACRUM_LENGTH_FAN_DEG[0], SACRUM_LENGTH_FAN_DEG[1] + 0.1, 5.0):
        lowest = min(_median(_region(polar, (degrees - 5.0, degrees + 5.0),
                                     (inferior + r, inferior + r + SACRUM_STRETCH))) for r in starts)
        if np.isfinite(lowest):
            continuity = max(continuity, lowest - ahead)
    checks = [(np.isfinite(s1) and np.isfinite(ahead), "the region below the body is outside the image"),
              (in_view >= MIN_IN_VIEW, f"only {100 * in_view:.0f} % of the region below the body is in the image "
               "(the sacrum is not in view)"),
              (s1 - ahead >= MIN_CONTRAST, "no bone below the disc that ends in soft tissue straight ahead "
               "(a mobile body follows, or none)"),
              (sacrum - ahead >= MIN_CONTRAST, "no bony mass turning posteriorly below the disc (no sacrum)"),
              (continuity >= MIN_SACRUM_CONTINUITY, "the bone below the disc is not a long sacrum (a gap within "
               "two levels)")]
    failed = [why for ok, why in checks if not ok]
    return L5Test(s1, ahead, sacrum, sacrum_deg, continuity, not failed, failed[0] if failed else "sacrum below",
                  in_view)


def intensity_levels(image01: np.ndarray, keypoints: Sequence[np.ndarray]) -> Tuple[float, float]:
    """(bone, disc): median of the bodies' interiors and of the disc bands above and below them."""
    from .gate2d import _band, _Body

    inside, discs = [], []
    for k in keypoints:
        body = _Body(np.asarray(k, dtype=np.float64))
        normal = np.array([-body.axis[1], body.axis[0]])
        grid = [body.centre + a * body.height * body.axis + b * body.depth * normal
                for a in np.linspace(-0.3, 0.3, 5) for b in np.linspace(-0.3, 0.3, 5)]
        inside.append(_sample(image01, np.array(grid)))
        for which, sign in ((body.sup, -1.0), (body.inf, 1.0)):
            discs.append(_sample(image01, _band(body, which, 0.08, 0.22, sign)))
    return float(np.nanmedian(np.concatenate(inside))), float(np.nanmedian(np.concatenate(discs)))


@dataclass
class SacralAnchor:
    """L5 found with the sacrum below it, and each detection's level name."""

    l5: np.ndarray
    l5_index: int
    labels: Dict[int, str]
    certain: Dict[int, bool]
    below_s1: List[int]
    test: L5Test
    level_px: float
    details: Dict[str, object] = field(default_factory=dict)
    l5_probability: Optional[float] = None
    #: Untrusted detections between two counted bodies one level apart: no level of their own (:func:`count_levels`).
    spare: List[int] = field(default_factory=list)


def trusted_bodies(checks: Sequence[Dict[str, float]]) -> List[bool]:
    """Detections the anchor may start from: in the column, in line, bone rim with discs, in the patient."""
    return [c.get("column", 0.0) >= 0.5
            and all(c.get(name, 1.0) >= 0.5 for name in ("position", "bone", "in_line", "overlap")) for c in checks]


#: Margin (levels) added to :data:`MAX_WALK` for the untrusted detections taken as candidates.
SNAP_LEVELS = 0.35
#: Height of a body the walk snaps to, or of the L5 candidate, over the median height of the trusted
#: bodies: neighbouring lumbar bodies differ by less than 15 % (Panjabi et al. 1992); 0.7-1.4 allows for
#: the detector's scatter and rejects a box drawn across a disc.
HEIGHT_RATIO = (0.7, 1.4)
#: Centre distance per level step between two neighbouring detections, over :data:`LEVEL_PER_HEIGHT` times
#: their mean height, when the levels between them are counted: body + disc is 1.2-1.45 body heights
#: (Panjabi et al. 1991, 1992), i.e. 0.9-1.09 of 1.33; 0.8-1.45 adds the scatter of the detected heights
#: (measured on the real sagittal images: 0.86-1.41 between adjacent bodies). A distance that fits no
#: whole number of steps, or two, stops the certain count there.
STEP_RATIO = (0.8, 1.45)
#: Least mean height (pixels) of two neighbouring boxes whose distance the count may take as certain. A disc is
#: 0.2-0.45 body heights (module doc), so between bodies under 8 pixels tall it spans 1.6-3.6 pixels and a box's
#: endplate, placed to a pixel, moves the measured step by a fifth of a level: real sagittal slices shrunk to 179
#: pixels (bodies 5-10 pixels tall) were counted with 4 levels wrong and certain, a body missed between two
#: counted as one step.
MIN_COUNTED_HEIGHT_PX = 8.0
#: A trusted body farther than this (levels) below the L5 found means the column goes on: no anchor.
BELOW_L5_LEVELS = 1.5


def _posterior_sign(bodies: Sequence) -> float:
    """+1 when the posterior keypoints lie at larger columns than the anterior ones (column 0 anterior)."""
    shift = [float(np.mean(b.keypoints[[4, 5], 0]) - np.mean(b.keypoints[[0, 1], 0])) for b in bodies]
    return 1.0 if np.median(shift) >= 0 else -1.0


def _inferior_levels(body, level: float) -> float:
    return float(np.dot(body.inf.mean(axis=0) - body.centre, body.axis)) / level


def _learned_scores(image01: np.ndarray, keypoints: Sequence[np.ndarray], model) -> np.ndarray:
    """The lumbosacral classifier's L5 probability of each candidate (:mod:`.lumbosacral`; NaN: ``model`` False)."""
    from .lumbosacral import l5_probabilities

    if model is False:
        return np.full(len(keypoints), np.nan)
    return l5_probabilities(image01, keypoints, model)


#: Why a picture whose bone is clipped at its brightest value gets no anchor from the classifier alone.
CLIPPED_BONE_REASON = ("the sacral test did not pass and the lumbosacral classifier alone does not anchor a picture "
                       "whose bone is clipped at its brightest value (a soft-tissue window, which it never saw)")


def _choose(tests: List[Dict], results: Dict[int, L5Test], classifier_alone: bool = True
            ) -> Tuple[Optional[Tuple[int, L5Test]], str]:
    """L5 from the hand-written test and the learned score (module doc, "Two readers"), or None and why not.

    ``classifier_alone`` False: the classifier confirms the test's L5 but does not name one the test did not.
    """
    from .lumbosacral import ANCHOR_PROBABILITY

    rule = next((t for t in tests if t["passed"]), None)
    scored = any(t["l5_probability"] is not None for t in tests)
    seen = [t for t in tests if t["in_view"] >= MIN_IN_VIEW and t["in_patient"] and t["l5_probability"] is not None]
    learned = max(seen, key=lambda t: t["l5_probability"], default=None)
    if learned is not None and learned["l5_probability"] < ANCHOR_PROBABILITY:
        learned = None
    if rule is not None and learned is not None and rule is not learned:
        return None, (f"the sacral test and the lumbosacral classifier name different bodies as L5 (at "
                      f"{rule['centre'][0]:.0f}, {rule['centre'][1]:.0f} and {learned['centre'][0]:.0f}, "
                      f"{learned['centre'][1]:.0f} px)")
    if rule is not None and learned is None and scored:
        score = rule["l5_probability"]
        return None, (f"the sacral test names the body at {rule['centre'][0]:.0f}, {rule['centre'][1]:.0f} px as L5, "
                      f"but the lumbosacral classifier does not confirm it (score "
                      f"{'none' if score is None else f'{score:.2f}'}, {ANCHOR_PROBABILITY} needed)")
    if rule is None and learned is not None and not classifier_alone:
        return None, CLIPPED_BONE_REASON
    chosen = learned or rule
    if chosen is None:
        return None, str(tests[-1]["why"]) if tests else "no candidate body"
    return (chosen["detection"], results[chosen["detection"]]), ""


def sacral_anchor(image01: np.ndarray, foreground: float, keypoints: Sequence[np.ndarray], trusted: Sequence[bool],
                  model=None, view_rows: Optional[Tuple[int, int]] = None, classifier_alone: bool = True
                  ) -> Tuple[Optional[SacralAnchor], str]:
    """Find L5 (the sacrum below it) and name every detection's level by counting up from it.

    Args:
        image01: the :func:`~VertebralFractureLib.radiograph.gate2d.body_window` image.
        foreground: its patient threshold (window units): the soft tissue ahead must be inside the patient.
        keypoints: (6, 2) keypoints ``[column, row]`` of the detections in the spine column.
        trusted: per detection, whether it is a body the walk may start from (:func:`trusted_bodies`).
        model: the lumbosacral classifier (:mod:`.lumbosacral`); default: the shipped weights; False: the sacral
            test alone (the boxes the classifier's own training reads on real slices must not depend on it).
        view_rows: first and last rows the view shows (a collimator's shadow, a scan's padding beyond them): rows
            outside are outside the picture for the test and the classifier alike (:data:`MIN_IN_VIEW`).
        classifier_alone: whether the classifier may name L5 where the sacral test names none (False on a picture
            whose bone is clipped at its brightest value: :func:`~.gate2d.bone_clipped`).

    Returns:
        (anchor or None, a one-line account of what was found or why there is no anchor).

    """
    from .gate2d import _Body

    image01 = outside_rows_unseen(image01, view_rows)
    bodies = [_Body(np.asarray(k, dtype=np.float64)) for k in keypoints]
    order = sorted(range(len(bodies)), key=lambda i: bodies[i].centre[1])
    good = [i for i in order if trusted[i]]
    if len(good) < 2:
        return None, "fewer than two bodies in the column pass the bone and line checks"
    height = float(np.median([bodies[i].height for i in good[-LEVEL_BODIES:]]))
    level = LEVEL_PER_HEIGHT * height
    posterior = _posterior_sign([bodies[i] for i in good])

    def plausible(i: int) -> bool:
        return HEIGHT_RATIO[0] <= bodies[i].height / height <= HEIGHT_RATIO[1]

    # candidates for L5, cranio-caudal: every detection from the third-lowest trusted body down, the untrusted
    # ones (boxes the detector drew on L4 / L5 whose rim the bone check missed) only down to MAX_WALK levels
    # below the lowest trusted body (farther down lie sacral segments and boxes in the pelvis)
    first, last = good[max(0, len(good) - 3)], good[-1]
    reach = MAX_WALK + SNAP_LEVELS
    candidates = [i for i in order if plausible(i) and bodies[i].centre[1] >= bodies[first].centre[1]
                  and (trusted[i] or float(np.dot(bodies[i].centre - bodies[last].centre, bodies[last].axis))
                       <= reach * level)]
    tests, results = [], {}
    learned = _learned_scores(image01, [bodies[i].keypoints for i in candidates], model)
    for i, probability in zip(candidates, learned):
        body = bodies[i]
        result = test_l5(image01, body.centre, body.axis, level, _inferior_levels(body, level), posterior)
        if result.passed and not result.exit > foreground:
            result = dataclasses.replace(result, passed=False, why="the region below the body is outside the patient")
        results[i] = result
        tests.append({"detection": i, "centre": [round(float(x), 1) for x in body.centre], **result.as_dict(),
                      "passed": result.passed, "why": result.why, "in_patient": bool(result.exit > foreground),
                      "l5_probability": None if not np.isfinite(probability) else round(float(probability), 3)})
    found, why_not = _choose(tests, results, classifier_alone)
    details: Dict[str, object] = {"level_px": round(level, 1), "tests": tests}
    if found is None:
        return None, "no sacrum found below the column: " + why_not
    l5_index, result = found
    l5, l5_axis = bodies[l5_index].centre, bodies[l5_index].axis
    if any(float(np.dot(bodies[i].centre - l5, l5_axis)) > BELOW_L5_LEVELS * level for i in good):
        return None, "a body that passes the bone and line checks lies below the sacrum found: no anchor"
    labels, certain, below, spare = count_levels(bodies, order, l5_index, trusted)
    if not labels:
        return None, "the count from the sacrum runs above C1"
    probability = next(t["l5_probability"] for t in tests if t["detection"] == l5_index)
    anchor = SacralAnchor(l5=np.asarray(l5, dtype=np.float64), l5_index=l5_index, labels=labels, certain=certain,
                          below_s1=below, test=result, level_px=level, details=details, l5_probability=probability,
                          spare=spare)
    learned = "no score" if probability is None else f"{probability:.2f}"
    if result.passed:
        said = (f"the bone below its disc is {result.s1 - result.exit:.2f} and the sacrum ({result.sacrum_deg:.0f} "
                f"degrees posterior) {result.sacrum - result.exit:.2f} of the window brighter than the soft tissue "
                f"straight ahead; lumbosacral classifier {learned}")
    else:
        said = f"lumbosacral classifier {learned} (the sacral test did not pass: {result.why})"
    return anchor, f"sacrum below the body at ({l5[0]:.0f}, {l5[1]:.0f}) px: {said}"


def outside_rows_unseen(image01: np.ndarray, view_rows: Optional[Tuple[int, int]]) -> np.ndarray:
    """``image01`` with the rows outside ``view_rows`` set to NaN: read as outside the picture (:func:`_sample`)."""
    if view_rows is None:
        return image01
    out = np.array(image01, dtype=np.float32, copy=True)
    out[: max(int(view_rows[0]), 0)] = np.nan
    out[int(view_rows[1]) + 1:] = np.nan
    return out


def _steps(distance: float) -> Optional[int]:
    """The one whole number of level steps that fits ``distance`` (levels) within :data:`STEP_RATIO`, else None."""
    fits = [n for n in range(1, 8) if STEP_RATIO[0] <= distance / n <= STEP_RATIO[1]]
    return fits[0] if len(fits) == 1 else None


def _step(a, b) -> Tuple[float, Optional[int]]:
    """Distance (levels) between two bodies and the whole number of level steps it makes, or None when not certain.

    None when the distance fits no single whole number (:data:`STEP_RATIO`), the two heights differ more than 1.67
    times, or the boxes are too small for the picture to show the disc between them (:data:`MIN_COUNTED_HEIGHT_PX`).
    """
    ratio = (b.height / a.height) if a.height > 0 else 0.0
    distance = float(np.linalg.norm(b.centre - a.centre)) / (LEVEL_PER_HEIGHT * 0.5 * (a.height + b.height))
    n = _steps(distance) if 1 / 1.67 <= ratio <= 1.67 else None
    if 0.5 * (a.height + b.height) < MIN_COUNTED_HEIGHT_PX:
        n = None  # the disc between two such bodies spans a pixel or two: the picture cannot settle the step
    return distance, n


#: An untrusted detection whose centre lies farther than this (body depths) in front of or behind the line through the
#: trusted bodies on either side is not stepped through by the count (:func:`count_levels`). A vertebra slips forward
#: on the one below it by up to half its depth in all but the rarest spondylolisthesis (Meyerding grades 1-2); a box a
#: whole depth in front of the column (a real slice as PNG: on the prevertebral tissue in front of T12) is not a level.
OFF_LINE_DEPTHS = 0.5


def _beside(order: Sequence[int], i: int, among) -> Tuple[Optional[int], Optional[int]]:
    """The nearest detections of ``among`` above and below detection ``i`` in the cranio-caudal ``order`` (or None)."""
    rank = list(order).index(i)
    above = next((j for j in reversed(order[:rank]) if j in among), None)
    return above, next((j for j in order[rank + 1:] if j in among), None)


def _off_the_line(bodies: Sequence, order: Sequence[int], line: Sequence[int], i: int) -> bool:
    """Whether detection ``i`` lies more than :data:`OFF_LINE_DEPTHS` from the line of the ``line`` bodies beside it.

    The line joins the nearest ``line`` bodies above and below ``i`` (in ``order``); at an end of the column it is the
    nearest one's own axis.
    """
    above, below = _beside(order, i, line)
    if above is None and below is None:
        return False
    if above is not None and below is not None:
        start, direction = bodies[above].centre, bodies[below].centre - bodies[above].centre
        depth = 0.5 * (bodies[above].depth + bodies[below].depth)
    else:
        near = bodies[above if above is not None else below]
        start, direction, depth = near.centre, near.axis, near.depth
    direction = direction / max(float(np.linalg.norm(direction)), 1e-6)
    offset = bodies[i].centre - start
    across = abs(float(offset[0] * direction[1] - offset[1] * direction[0]))
    return across > OFF_LINE_DEPTHS * depth


def count_levels(bodies: Sequence, order: Sequence[int], l5_index: int, trusted: Optional[Sequence[bool]] = None
                 ) -> Tuple[Dict[int, str], Dict[int, bool], List[int], List[int]]:
    """Level names counted from L5 by the spacing of neighbouring detections.

    The count steps from body to body up and down from L5, a gap over a body the detector missed counted as the whole
    number of levels it spans. It does not step through a detection that is not *trusted* (:func:`trusted_bodies`:
    in the column and in line, with a bright endplate rim and darker discs) and lies off the line of the trusted
    bodies beside it (:data:`OFF_LINE_DEPTHS`): on a real slice exported as PNG a box with no rim a whole depth in
    front of T12, counted as one more step, put every level above it two off with certainty. Such a detection is
    named from the bodies on either side, a level between theirs, certain only when both give it that one; between
    two bodies one level apart it has no level of its own. A faint body on the line (an osteoporotic body whose rim
    the bone check misses) is stepped through as before.

    Args:
        bodies: the detections (``.centre``, ``.height``).
        order: their indices, cranio-caudal.
        l5_index: the detection named L5.
        trusted: per detection, whether the count may rest on it; default all.

    Returns:
        (detection -> level name, detection -> whether its count is certain, detections below S1, detections with no
        level of their own: untrusted boxes between two counted bodies one level apart). Past
        the first step that is not certain (:func:`_step`) the count goes on with the nearest whole number, but
        those levels are not certain. Empty labels when the count runs above C1.

    """
    from .labels import CERVICAL_LEVELS, RADIOGRAPH_LEVELS

    names = list(CERVICAL_LEVELS) + list(RADIOGRAPH_LEVELS)  # a view may show C7 and above (never graded)
    trusted = [True] * len(bodies) if trusted is None else list(trusted)
    sure_bodies = [i for i in order if i == l5_index or trusted[i]]
    rests = [i for i in order if i in sure_bodies or not _off_the_line(bodies, order, sure_bodies, i)]
    position = {l5_index: names.index("L5")}
    sure = {l5_index: True}
    rank = rests.index(l5_index)
    for direction in (-1, 1):
        previous, k, certain = l5_index, rank + direction, True
        while 0 <= k < len(rests):
            i = rests[k]
            distance, n = _step(bodies[previous], bodies[i])
            if n is None:
                certain = False
                n = max(1, int(round(distance)))
            position[i] = position[previous] + direction * n
            sure[i] = certain
            previous, k = i, k + direction
    spare: List[int] = []
    taken = set(position.values())
    for i in order:
        if i in position:
            continue
        above = _beside(order, i, position)[0]  # placed above: a body the count rests on, or one named already
        below = _beside(order, i, rests)[1]
        named = []
        for neighbour, direction in ((above, 1), (below, -1)):
            if neighbour is None:
                continue
            distance, n = _step(bodies[neighbour], bodies[i])
            named.append((position[neighbour] + direction * (n or max(1, int(round(distance)))),
                          n is not None and sure[neighbour]))
        low = position[above] + 1 if above is not None else -len(names)
        high = position[below] - 1 if below is not None else 2 * len(names)
        free = [p for p in range(low, high + 1) if p not in taken]
        if not free:  # between two bodies one level apart: a second box on a level, no level of its own
            spare.append(i)
            continue
        wanted = named[0][0]
        position[i] = min(free, key=lambda p: (abs(p - wanted), p))
        taken.add(position[i])
        sure[i] = all(certain and p == position[i] for p, certain in named)
    labels, below_s1 = {}, []
    for i, p in position.items():
        if p < 0:
            return {}, {}, [], []
        if p >= len(names):
            below_s1.append(i)
        else:
            labels[i] = names[p]
    return labels, {i: sure[i] for i in labels}, below_s1, spare


#: Reason given for a detection left without a level by the count (:attr:`SacralAnchor.spare`).
SPARE_REASON = ("between two vertebrae counted one level apart from the sacrum, without a bright endplate rim of its "
                "own: a second box on one level, not a vertebra")
#: Reason given for a detection below S1 once the sacrum is found (it is a sacral segment or lies in the pelvis).
BELOW_S1_REASON = "below S1 of the sacral anchor: a sacral segment or the pelvis, not a mobile vertebral body"
_SACRAL_TEST = ("(bone below its disc, soft tissue of the pelvis straight ahead, a long bony mass turning "
                "posteriorly), the other levels by the spacing of neighbouring bodies (radiograph/sacrum.py)")
METHOD = ("counted from the sacrum: L5 is the body with the sacrum below it, named by the lumbosacral classifier "
          "and not contradicted by the sacral test " + _SACRAL_TEST)
#: The method without a classifier (``model=False``): the sacral test alone.
METHOD_TEST_ALONE = ("counted from the sacrum: L5 is the body with the sacrum below it by the sacral test alone "
                     + _SACRAL_TEST)


def anchored_levels(image01: np.ndarray, foreground: float, keypoints: Sequence[np.ndarray],
                    checks: Sequence[Dict[str, float]], model=None, view_rows: Optional[Tuple[int, int]] = None,
                    classifier_alone: bool = True) -> Tuple[Optional[SacralAnchor], Dict[str, object]]:
    """The ``levels`` report of a radiograph: anchored on the sacrum when it is found.

    Args:
        image01: the body-windowed image.
        foreground: its patient threshold.
        keypoints: (6, 2) keypoints of the detections in the spine column.
        checks: the 2D gate's check scores of each detection.
        model: the lumbosacral classifier (:mod:`.lumbosacral`); default: the shipped weights; False: the sacral
            test alone.
        view_rows: first and last rows the view shows (:func:`sacral_anchor`).
        classifier_alone: whether the classifier may name L5 without the sacral test (:func:`sacral_anchor`).

    Returns:
        (anchor or None, the ``levels`` dict: ``anchor`` ``"sacrum"`` or None, ``certain``, ``method``,
        ``reason``, and with an anchor ``l5`` (centre, pixels), ``evidence`` (the test's numbers) and
        ``uncertain_levels`` (levels past a spacing that fits no whole number of levels)).

    """
    anchor, reason = sacral_anchor(image01, foreground, keypoints, trusted_bodies(checks), model, view_rows,
                                   classifier_alone)
    if anchor is None:
        return None, {"anchor": None, "certain": False, "reason": reason,
                      "method": "Gartland et al. 2025 heatmaps T4-L4 and consecutive order; no anatomical anchor"}
    method = METHOD_TEST_ALONE if anchor.l5_probability is None else METHOD
    return anchor, {"anchor": "sacrum", "certain": True, "method": method, "reason": reason,
                    "l5": [round(float(x), 1) for x in anchor.l5],
                    "evidence": {**anchor.test.as_dict(), "sacral_test_passed": anchor.test.passed,
                                 "l5_probability": anchor.l5_probability},
                    "uncertain_levels": [anchor.labels[i] for i in sorted(anchor.labels)
                                         if not anchor.certain.get(i, False)]}
