"""Anatomical anchors of the level count on CT: the 12th rib and the iliac crests / sacrum.

A level classifier trained on generated spines can be off by several levels on a real CT (a chest CT
with T5-L1 in view was named T9-L5). Radiologists count from landmarks instead: ribs articulate with
T1-T12, so the last rib-bearing vertebra above a rib-free one is T12; the iliac crests reach the
L4 body or the L4/L5 disc and L5 is the last free body above the sacrum (the intercristal line,
Chakraverty et al. 2007 "Which spinal levels are identified by palpation of the iliac crests and the
posterior superior iliac spines?", J Anat 210:232-236). This module finds those landmarks on a wide,
coarse straightening of the CT around the spine centre-line (rows along the curve as in the
detector's image, ``[row, col (anterior -> posterior), lat]``):

- **ribs**: bone (> :data:`BONE_HU`) in a lateral band :data:`RIB_BAND_MM` beside the column, cut
  off from the column itself, in 3D connected components; a component that crosses the band
  (enters it at its medial face and reaches its lateral face, or the lateral edge of the field of
  view) and is thin (cross-section in a lateral plane below :data:`RIB_MAX_AREA_MM2`, or below
  :data:`RIB_MAX_OBLIQUE_AREA_MM2` for a tube at most :data:`RIB_MAX_THICKNESS_MM` thick) is a rib; its
  attachment row is the row of its medial part extrapolated linearly to :data:`RIB_HEAD_LATERAL_MM`
  (lower ribs descend steeply). Lumbar transverse processes end before the band's lateral face
  (L3, the longest, about 45 mm from the midline), ribs go on. A crossing component that is faint and
  speckled (:data:`SOFT_TISSUE_P90_HU`, :data:`SOFT_TISSUE_FILL`) is contrast-enhanced kidney cortex,
  not a rib; beside it, "no rib" is not an observation. A component that does not cross the band but runs into
  the edge of the field of view (a grid edge, or the padding outside a small reconstruction circle, which reads
  below :data:`OUTSIDE` / 2) is a rib only when it is as dense as rib bone (90th percentile at least
  :data:`SOFT_TISSUE_P90_HU`), since nothing beyond the edge shows that it goes on like a rib; a fainter one is
  enhanced soft tissue, as above.
- **iliac crests**: large bone beside the column (cross-section in a row plane at least
  :data:`PELVIS_MIN_AREA_MM2`, beyond :data:`PELVIS_LATERAL_MM`) below the last rib.

:func:`find_anchor` turns these into one anchored vertebra (index into the detections, level) and
says how it decided; two anchors that disagree (11 or 13 rib pairs, an L6) or none in view leave
the levels uncertain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

#: Bone threshold in HU (as :data:`.levelfeatures.BONE_HU`: cortical and trabecular bone, above contrast blood).
BONE_HU = 200.0
#: Grid of the wide straightening (mm): coarse, ribs are 8-12 mm tall.
GRID_MM = 2.0
#: Half widths (anterior-posterior, lateral) of the wide straightening (mm); ribs curve forward beyond 70 mm.
HALF_WIDTH_MM = (70.0, 140.0)
#: Value outside the CT in the wide straightening (tells "no rib" from "not in the field of view").
OUTSIDE = -3000.0
#: Lateral band (mm from the mid-sagittal plane) a rib must cross: its medial face lies at the tips of the
#: thoracic transverse processes (the costotransverse joints, 30-40 mm), its lateral face beyond the tips of
#: the lumbar transverse processes (L3 about 45 mm: half the 85-95 mm span of adult L3).
RIB_BAND_MM = (38.0, 66.0)
#: A voxel within this distance of a band face touches it.
FACE_MM = 4.0
#: Lateral position (mm) to which a rib's medial course is extrapolated: the rib head beside the body.
RIB_HEAD_LATERAL_MM = 28.0
#: A rib's largest cross-section in a lateral plane (mm^2); ribs are about 10 x 6 mm, the ilium and scapula far larger
#: (measured on the real chest CT: ribs <= 240 mm^2 at 2 mm voxels).
RIB_MAX_AREA_MM2 = 320.0
#: A larger cross-section up to this (mm^2) is still a rib when the component is thin (median over its lateral planes
#: of the smaller of its cranio-caudal and antero-posterior extents at most :data:`RIB_MAX_THICKNESS_MM`): a rib that
#: crosses the band steeply (the 12th, descending) or a large patient's rib has a long oblique section but stays a
#: 10-15 mm tube, while the ilium is a plate. Measured (2026-12-04) on generated spines drawn 1.25 times the mean size:
#: 12th ribs 344-404 mm^2, thickness 12 mm, refused by the area alone, so T11 was taken for the last rib-bearing body
#: and every level named one too low with certainty; real chest CT ribs thickness 6-12 mm; band-crossing pieces of the
#: ilium and scapula 12-40 mm thick, or, where thinner (8 mm), above 780 mm^2.
RIB_MAX_OBLIQUE_AREA_MM2 = 480.0
RIB_MAX_THICKNESS_MM = 12.0
#: Iliac wing: bone beyond this lateral distance (mm) ...
PELVIS_LATERAL_MM = 50.0
#: ... with at least this cross-section in one row plane (mm^2; ribs crossing a row plane give less than
#: 250 mm^2 per component on the real chest CT).
PELVIS_MIN_AREA_MM2 = 320.0
#: ... and thin where it starts: the median, over its row planes within :data:`PELVIS_TOP_MM` of its top, of the
#: largest disc that fits inside its cross-section (diameter, mm) at most this. The iliac wing near its crest is a
#: plate (the real abdominal CT: 4-12 mm at 2 mm voxels); a bowel loop filled with positive oral contrast is a solid
#: tube at least 20 mm across where its section reaches :data:`PELVIS_MIN_AREA_MM2` (the same CT with an opacified
#: colon drawn beside L2-L4, ``benchmarks/bench_real_variants.py`` ``colon_left``: 33-36 mm; taken for the crests,
#: it disagreed with the 12th rib by two levels and the count lost its anchor).
PELVIS_MAX_THICKNESS_MM = 20.0
#: ... and wide from side to side: its voxels span at least this (mm) of lateral distance. The ilium is a broad plate
#: that runs outwards from the sacroiliac joint to the crest; the anterior arc of a rib is a strip running from front
#: to back. Measured on the 2 mm wide straightening: the real abdominal CT's wings 72-90 mm (the search starts at
#: :data:`PELVIS_LATERAL_MM` and ends at :data:`HALF_WIDTH_MM`), the top of its right crest, a piece of its own in the
#: CT's lowest three quarters, 56 mm; generated pelves 90 mm; the real chest CT's scapulae 40-54 mm (the ribs rule them
#: out: crests only below the last rib-bearing body); the anterior arcs of a generated chest's faint ribs (about 260
#: HU, their crossing of the rib band lost to the bone threshold, so no rib was seen) 12-22 mm, taken for the crests:
#: with 80 HU of noise T3-T8 were named L2-S1 with certainty (docs/findings.md, 2026-12-07, twenty-eighth session).
PELVIS_MIN_SPAN_MM = 36.0
PELVIS_TOP_MM = 20.0
#: Two runs of one component's medial rows closer than this (mm) are one rib (ribs lie 15-30 mm apart).
RIB_MIN_GAP_MM = 14.0
#: Contrast-enhanced soft tissue (kidney cortex in an arterial or corticomedullary phase, about 150-250 HU)
#: reaches :data:`BONE_HU` only in noise speckles: a band-crossing component whose 90th percentile stays
#: below this (HU) ...
SOFT_TISSUE_P90_HU = 300.0
#: ... and whose lateral cross-sections are speckled (median fraction of their row x anterior-posterior
#: bounding box that is above :data:`BONE_HU` below this) is no rib. Measured on the real chest CT (2 mm
#: straightening of the CT as stored, resampled to 1 mm and to 5 mm slices, and with 40 HU noise): kidneys
#: 90th percentile 243-270 HU, fill 0.17-0.38; ribs 331-1041 HU, fill 0.44-0.75; the thin 12th ribs at the
#: top edge of the 3 mm abdomen CT 290-309 HU, fill 0.67-1.0. Which speckles connect into one band-crossing
#: component depends on the noise and on the voxel grid the CT was sampled on: on the chest CT a kidney
#: crossed the band beside L1 on the 1 mm and 5 mm resamplings (a rib at L1: no 12th-rib anchor), beside
#: T12 as stored.
SOFT_TISSUE_FILL = 0.5
#: Medial rows of one component further apart than this (mm) start a new run (one rib each, unless
#: :data:`RIB_MIN_GAP_MM` merges them).
RIB_RUN_GAP_MM = 6.0
#: A rib's medial course is read within this many mm (rows) of its medial run.
RIB_COURSE_ROWS_MM = 30.0
#: Anterior-posterior range (mm from the centre-line, posterior positive) where ribs cross the band.
RIB_AP_MM = (-20.0, 60.0)
#: Fraction of a body's rib search region (rows x band voxels, :meth:`Landmarks.in_view`) that must lie inside
#: the CT for "no rib" to count as an observation. A fraction of the whole region, not of each row: an oblique
#: edge of the field of view cuts the posterior corner of the last rows at a place that moves with the tilt of
#: the straightening planes there (the centre-line's end tangent, which differed by 9 degrees between the real
#: chest CT as stored and resampled to 1 mm: L1's left band region was 99 % and 96 % in view, but its last
#: row 94 % and 79 %). One whole row of the region out of view (a field of view ending square) is still too much.
IN_VIEW_FRACTION = 0.95
#: "No rib" beside a body is an observation only where the band is in view from :data:`RIB_ABOVE_MM` above the
#: body's top to this far below its centre (the rib head articulates at the upper half of the body; a 12th
#: rib's medial course crosses the band's medial face by its lower third). Requiring the whole body plus a
#: rib's descent (24 mm below the bottom) cost the real chest CT its correct 12th-rib anchor (its L1 lies at
#: the oblique inferior edge of the field of view).
RIB_BELOW_CENTRE_MM = 6.0
#: See :data:`RIB_BELOW_CENTRE_MM` (the disc above the body).
RIB_ABOVE_MM = 4.0
#: A rib up to this far (mm) above the first detection's top belongs to it when no second detection gives
#: the disc height (with one, half the disc: the 12th rib beside a T12 the detector missed at the top edge of
#: the 1 mm resampled abdomen CT lay 7 mm above L1's top, made L1 rib-bearing and contradicted the crests).
TOP_SLACK_MM = 4.0
#: A rib up to this far (mm) below the last detection's bottom belongs to it (a rib there makes the last
#: body rib-bearing, which never anchors wrongly: at worst no transition is seen).
BOTTOM_SLACK_MM = 10.0
#: The wide straightening extends the curve straight beyond both ends by this much, so that the rib search
#: region of the first and last bodies shows the real field of view (outside it: :data:`OUTSIDE`) instead of
#: ending where the curve ends.
CURVE_MARGIN_MM = 40.0


@dataclass
class Rib:
    """One rib found beside the column.

    Attributes:
        side: "right" or "left" (patient).
        row_mm: attachment row (mm along the curve) extrapolated to the rib head.
        area_mm2: largest cross-section in a lateral plane.
    """

    side: str
    row_mm: float
    area_mm2: float


@dataclass
class Landmarks:
    """Ribs, large lateral bones (iliac wing candidates) and field of view of one wide straightening."""

    ribs: List[Rib]
    pelvis_tops_mm: List[float]
    rows_mm: float
    band_in_view: np.ndarray  # (rows, 2) fraction of the rib band inside the CT, [right, left]
    spacing: float = GRID_MM
    #: Band-crossing components that look like enhanced soft tissue (:data:`SOFT_TISSUE_P90_HU`), as
    #: ``(side, first_row_mm, last_row_mm)`` of their medial part: no rib, but they hide whether a rib is there.
    soft: List[Tuple[str, float, float]] = field(default_factory=list)

    def in_view(self, side: int, top_mm: float, bottom_mm: float) -> bool:
        """Whether the rib band on ``side`` (0 right, 1 left) lies inside the CT for rows in [top, bottom].

        In view: at least :data:`IN_VIEW_FRACTION` of the band's voxels over those rows lie inside the CT.
        Rows beyond either end of the straightening are not in view (nothing was seen there).
        """
        i0 = int(np.floor(top_mm / self.spacing))
        i1 = int(np.ceil(bottom_mm / self.spacing)) + 1
        if i0 < 0 or i1 > len(self.band_in_view) or i1 <= i0:
            return False
        return bool(np.mean(self.band_in_view[i0:i1, side]) >= IN_VIEW_FRACTION)


@dataclass
class LevelAnchor:
    """How the levels were decided.

    Attributes:
        anchor: "12th rib", "iliac crests", "12th rib + iliac crests" or None.
        index: the anchored detection (in the order given to :func:`find_anchor`), or None.
        level: its level name, or None.
        certain: True when the count is anchored and no two anchors disagree.
        confidence: 0-1 for the anchored vertebra.
        method: one sentence for the user.
        rib_bearing: per detection, (right, left): True rib, False no rib, None not in view.
    """

    anchor: Optional[str]
    index: Optional[int]
    level: Optional[str]
    certain: bool
    confidence: float
    method: str
    rib_bearing: List[Tuple[Optional[bool], Optional[bool]]] = field(default_factory=list)

    @property
    def anchored_levels(self) -> List[str]:
        """The levels the anatomy names: the anchored one, and L4 beside the iliac crests where they confirm the rib."""
        if self.level is None:
            return []
        return [self.level, "L4"] if self.anchor == "12th rib + iliac crests" else [self.level]

    def to_dict(self) -> dict:
        """The ``result.patient["levels"]`` entry."""
        return {"anchor": self.anchor, "certain": bool(self.certain), "method": self.method,
                "confidence": round(float(self.confidence), 3)}


def wide_straightening(ct, curve, margin_mm: float = 0.0):
    """Coarse wide straightening (:data:`GRID_MM`, :data:`HALF_WIDTH_MM`) of the CT on the detector's curve.

    Rows start ``margin_mm`` (rounded up to whole :data:`GRID_MM` rows) before the curve's first point, the
    curve extended straight along its end tangents, so row ``k`` lies ``k * GRID_MM - margin`` mm along the
    curve like the detector's mid-sagittal image rows. Use :func:`margin_rows_mm` for the exact offset.
    """
    from ..spine import straighten

    return straighten(ct, curve, spacing=GRID_MM, half_width_mm=HALF_WIDTH_MM, fill=OUTSIDE, margin_mm=margin_mm,
                      anti_alias=True)


def margin_rows_mm(margin_mm: float) -> float:
    """Offset (mm) of the curve's first point in a :func:`wide_straightening` with ``margin_mm``."""
    return float(np.ceil(margin_mm / GRID_MM - 1e-9) * GRID_MM) if margin_mm > 0 else 0.0


def find_landmarks(volume: np.ndarray, spacing: float = GRID_MM) -> Landmarks:
    """Ribs, iliac crest and rib-band field of view of a straightened volume ``[row, col, lat]``."""
    from scipy import ndimage as ndi

    volume = np.asarray(volume)
    rows, _, lats = volume.shape
    lateral = (np.arange(lats) - (lats - 1) / 2.0) * spacing
    inside = volume > OUTSIDE / 2
    bone = volume > BONE_HU
    lo, hi = RIB_BAND_MM
    ribs: List[Rib] = []
    soft: List[Tuple[str, float, float]] = []
    band_in_view = np.zeros((rows, 2))
    for side_index, (name, half) in enumerate((("right", lateral < 0), ("left", lateral > 0))):
        distance = np.abs(lateral)
        band = half & (distance >= lo) & (distance <= hi)
        ap = (np.arange(volume.shape[1]) - (volume.shape[1] - 1) / 2.0) * spacing
        posterior = (ap >= RIB_AP_MM[0]) & (ap <= RIB_AP_MM[1])
        band_in_view[:, side_index] = inside[:, posterior][:, :, band].mean(axis=(1, 2))
        mask = bone & band[None, None, :]
        labels, _ = ndi.label(mask)
        for number, box in enumerate(ndi.find_objects(labels), start=1):
            if box is None:
                continue
            idx = np.argwhere(labels[box] == number) + [s.start for s in box]
            far = distance[idx[:, 2]]
            if far.min() > lo + FACE_MM:
                continue  # does not reach the column (scapula, lateral rib pieces)
            at_edge = far.max() < hi - FACE_MM
            if at_edge:
                grown = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in box)  # the outside is beyond the box
                if not (far.max() >= lo + 0.5 * (hi - lo) and _touches_outside(labels[grown] == number, inside[grown])):
                    continue  # ends inside the band (a transverse process) and not at the edge of the view
            area = float(np.bincount(idx[:, 2]).max()) * spacing**2
            if area > RIB_MAX_AREA_MM2 and not (area <= RIB_MAX_OBLIQUE_AREA_MM2
                                                and _thickness_mm(idx, spacing) <= RIB_MAX_THICKNESS_MM):
                continue
            medial = idx[far <= lo + FACE_MM]
            medial_rows = np.unique(medial[:, 0])
            values = volume[tuple(idx.T)]
            # a piece cut by the edge of the view has no crossing to vouch for it: unless it is as dense as rib bone
            # it is enhanced soft tissue (the real chest CT in a 180 mm reconstruction circle: the kidney's edge
            # beside L1, 90th percentile 233 HU, was taken for a rib and the 12th rib's transition was lost; over
            # the real CTs and their field-of-view variants such pieces were 219-233 HU, ribs cut by the edge 349 HU
            # and more: docs/findings.md, 2026-12-07, twenty-fifth session)
            faint_at_edge = at_edge and float(np.percentile(values, 90)) < SOFT_TISSUE_P90_HU
            if faint_at_edge or _soft_tissue(idx, values):
                soft.append((name, float(medial_rows.min() * spacing), float(medial_rows.max() * spacing)))
                continue
            for group in _medial_groups(medial_rows, spacing):
                ribs.append(Rib(name, _attachment_row(idx, far, group, spacing), area))
    crests = _pelvis_tops(bone, lateral, spacing)
    return Landmarks(sorted(ribs, key=lambda r: r.row_mm), crests, rows * spacing, band_in_view, spacing, soft)


def _thickness_mm(idx: np.ndarray, spacing: float) -> float:
    """Median over a component's lateral planes of the smaller of its row and antero-posterior extents (mm)."""
    sizes = []
    for lateral in np.unique(idx[:, 2]):
        plane = idx[idx[:, 2] == lateral]
        sizes.append(min(np.ptp(plane[:, 0]), np.ptp(plane[:, 1])) * spacing + spacing)
    return float(np.median(sizes))


def _soft_tissue(idx: np.ndarray, values: np.ndarray) -> bool:
    """Whether a band-crossing component is enhanced soft tissue: faint and speckled, not bone.

    Args:
        idx: (n, 3) voxel indices ``[row, col, lat]`` of the component.
        values: (n,) their HU.

    Returns:
        True where the 90th percentile stays below :data:`SOFT_TISSUE_P90_HU` and the median fill of its
        lateral cross-sections (voxels over the row x anterior-posterior bounding box) below
        :data:`SOFT_TISSUE_FILL`.
    """
    if float(np.percentile(values, 90)) >= SOFT_TISSUE_P90_HU:
        return False
    fills = []
    for lat in np.unique(idx[:, 2]):
        plane = idx[idx[:, 2] == lat]
        box = (np.ptp(plane[:, 0]) + 1) * (np.ptp(plane[:, 1]) + 1)
        fills.append(len(plane) / box)
    return float(np.median(fills)) < SOFT_TISSUE_FILL


def _touches_outside(component: np.ndarray, inside: np.ndarray) -> bool:
    """Whether a component (boolean, in its bounding box) borders voxels outside the CT."""
    from scipy import ndimage as ndi

    return bool(np.any(ndi.binary_dilation(component) & ~inside))


def _medial_groups(rows: np.ndarray, spacing: float) -> List[np.ndarray]:
    """Runs of a component's medial rows, one per rib: runs closer than :data:`RIB_MIN_GAP_MM` are one rib."""
    groups = np.split(rows, np.where(np.diff(rows) * spacing > RIB_RUN_GAP_MM)[0] + 1)
    merged = [groups[0]]
    for group in groups[1:]:
        if (group.mean() - merged[-1].mean()) * spacing < RIB_MIN_GAP_MM:
            merged[-1] = np.concatenate([merged[-1], group])
        else:
            merged.append(group)
    return merged


def _attachment_row(idx: np.ndarray, far: np.ndarray, group: np.ndarray, spacing: float) -> float:
    """Row (mm) of one rib's medial course (within 14 mm of the band's medial face) extrapolated to the head."""
    reach = int(round(RIB_COURSE_ROWS_MM / spacing))
    near = np.isin(idx[:, 0], np.arange(group.min() - reach, group.max() + reach + 1)) & (far <= RIB_BAND_MM[0] + 14.0)
    distances = np.unique(far[near])
    rows = np.array([idx[near][far[near] == d][:, 0].mean() * spacing for d in distances])
    if len(distances) < 3:
        return float(group.mean() * spacing)
    slope, offset = np.polyfit(distances, rows, 1)
    start = float(distances.min())
    return float(max(slope, 0.0) * (RIB_HEAD_LATERAL_MM - start) + offset + slope * start)


def _pelvis_tops(bone: np.ndarray, lateral: np.ndarray, spacing: float) -> List[float]:
    """Top rows (mm) of every large, plate-like lateral bone component (iliac wing candidates; also scapulae).

    Large: a row-plane section of at least :data:`PELVIS_MIN_AREA_MM2`; plate-like: thin near its top
    (:data:`PELVIS_MAX_THICKNESS_MM`), which a bowel loop filled with oral contrast is not; wide from side to side
    (:data:`PELVIS_MIN_SPAN_MM`), which the anterior arc of a rib is not.
    """
    from scipy import ndimage as ndi

    tops = []
    for half in (lateral < 0, lateral > 0):
        mask = ndi.binary_opening(bone & (half & (np.abs(lateral) >= PELVIS_LATERAL_MM))[None, None, :])
        labels, _ = ndi.label(mask)
        for number, box in enumerate(ndi.find_objects(labels), start=1):
            if box is None:
                continue
            component = labels[box] == number
            rows = np.argwhere(component)[:, 0]
            out = np.abs(lateral[box[2]][np.flatnonzero(component.any(axis=(0, 1)))])
            span = float(out.max() - out.min()) + spacing
            if (np.bincount(rows).max() * spacing**2 >= PELVIS_MIN_AREA_MM2 and span >= PELVIS_MIN_SPAN_MM
                    and _plate_near_top(component, spacing)):
                tops.append(float(box[0].start * spacing))
    return sorted(tops)


def _plate_near_top(component: np.ndarray, spacing: float) -> bool:
    """Whether a component (boolean ``[row, col, lat]``, its first row its top) is thin near its top.

    The median, over its row planes within :data:`PELVIS_TOP_MM` of the top, of the diameter of the largest disc
    inside its section is at most :data:`PELVIS_MAX_THICKNESS_MM`.
    """
    from scipy import ndimage as ndi

    planes = component[: max(1, int(round(PELVIS_TOP_MM / spacing)))]
    # padded: the section reaches the edges of its bounding box, beyond which the transform sees no background
    widths = [2.0 * float(ndi.distance_transform_edt(np.pad(plane, 1)).max()) * spacing for plane in planes
              if plane.any()]
    return float(np.median(widths)) <= PELVIS_MAX_THICKNESS_MM


def rib_bearing(landmarks: Landmarks, tops_mm: np.ndarray, bottoms_mm: np.ndarray
                ) -> List[Tuple[Optional[bool], Optional[bool]]]:
    """Per detection (sorted superior -> inferior) and side: rib attached (True), none (False), not in view (None).

    A rib belongs to the detection whose centre is nearest its attachment row, if within the detection's
    rows widened by half the gap to each neighbour (above the first detection: half the gap below it, a rib
    higher up belonging to a body the detector missed; below the last: :data:`BOTTOM_SLACK_MM`). "No rib"
    is an observation only where the detection's rib search region lies inside the CT: the lateral band
    from :data:`RIB_ABOVE_MM` above its top to :data:`RIB_BELOW_CENTRE_MM` below its centre, rows beyond
    the straightening counting as out of view (:meth:`Landmarks.in_view`), and where no enhanced soft
    tissue crosses the band beside the body (:attr:`Landmarks.soft`, which could hide a rib); else None.
    The straightening extends :data:`CURVE_MARGIN_MM` beyond the curve (:func:`anchor_of_detections`), so a
    rib of the last body that descends below the curve's end is still seen, or touches the field of view's
    edge (generated chest case seed 900000: the curve ended at T11, whose rib left the straightening, and
    T11 was named L1).
    """
    tops, bottoms = np.asarray(tops_mm, float), np.asarray(bottoms_mm, float)
    centres = 0.5 * (tops + bottoms)
    n = len(centres)
    out: List[Tuple[Optional[bool], Optional[bool]]] = []
    found = np.zeros((n, 2), dtype=bool)

    def owner(row_mm: float) -> Optional[int]:
        k = int(np.argmin(np.abs(centres - row_mm)))
        if k > 0:
            upper = tops[k] - 0.5 * (tops[k] - bottoms[k - 1])
        else:  # half the disc below: a rib higher up belongs to an undetected body above (TOP_SLACK_MM)
            upper = tops[0] - (0.5 * (tops[1] - bottoms[0]) if n > 1 else TOP_SLACK_MM)
        lower = bottoms[k] + (0.5 * (tops[k + 1] - bottoms[k]) if k < n - 1 else BOTTOM_SLACK_MM)
        return k if upper <= row_mm <= lower else None

    for rib in landmarks.ribs if n else []:
        k = owner(rib.row_mm)
        if k is not None:
            found[k, 0 if rib.side == "right" else 1] = True
    hidden = np.zeros((n, 2), dtype=bool)
    for name, first, last in landmarks.soft:
        hidden[(tops - RIB_ABOVE_MM <= last) & (bottoms >= first), 0 if name == "right" else 1] = True
    for k in range(n):
        sides = []
        for side in (0, 1):
            if found[k, side]:
                sides.append(True)
            elif hidden[k, side]:
                sides.append(None)
            elif landmarks.in_view(side, tops[k] - RIB_ABOVE_MM, centres[k] + RIB_BELOW_CENTRE_MM):
                sides.append(False)
            else:
                sides.append(None)
        out.append((sides[0], sides[1]))
    return out


def _twelfth_rib(bearing: Sequence[Tuple[Optional[bool], Optional[bool]]], regular: np.ndarray
                 ) -> Tuple[Optional[int], int]:
    """Index of T12 (last rib-bearing detection above a rib-free one) and how many sides agree (0-2).

    A side votes where it shows the transition: a rib at detection ``k - 1``, an observed "no rib" (the
    whole search region in view, :func:`rib_bearing`) at ``k``, and no rib at any later detection. The
    vote stands only if it is consistent with the other side: the other side shows no rib below it
    (a rib beside the body that would be L1 means 13 ribs, an asymmetric junction, or a missed rib).

    Returns:
        ``(index, sides)``; ``(None, 0)`` where no transition is seen; ``(-1, 0)`` where the sides disagree.
    """
    votes = {}
    for side in (0, 1):
        for k in range(len(bearing) - 1, 0, -1):
            if bearing[k - 1][side] is True and bearing[k][side] is False and regular[k - 1]:
                if not any(bearing[j][side] is True for j in range(k, len(bearing))):
                    votes.setdefault(k - 1, []).append(side)
                break
    if not votes:
        return None, 0
    if len(votes) > 1:
        return -1, 0  # the two sides disagree: an asymmetric or transitional junction
    index, sides = next(iter(votes.items()))
    if any(True in bearing[j] for j in range(index + 1, len(bearing))):
        return -1, 0  # a rib on the other side below the transition: the sides disagree
    return index, len(sides)


def _crest_row(landmarks: Landmarks, bearing, tops: np.ndarray, bottoms: np.ndarray) -> Optional[float]:
    """The iliac crest: the highest large lateral bone below the rib cage.

    Below the first detection without ribs on both sides under the last rib-bearing one (scapulae and
    clavicles lie beside rib-bearing vertebrae); without ribs in view, below the top detection's centre.
    """
    if len(tops) == 0:
        return None
    centres = 0.5 * (tops + bottoms)
    limit = centres[0]
    ribbed = [k for k, sides in enumerate(bearing) if True in sides]
    free = [k for k, sides in enumerate(bearing) if ribbed and k > ribbed[0] and True not in sides]
    if ribbed:
        if not free:
            return None
        limit = centres[free[0]]
    below = [row for row in landmarks.pelvis_tops_mm if row > limit]
    return below[0] if below else None


def _crest_level(crest_mm: Optional[float], tops: np.ndarray, bottoms: np.ndarray) -> Optional[int]:
    """Index of L4: the detection whose rows (widened by 4 mm) hold the crest top, else the last one above it.

    Needs one detection below (L5, the last free body above the sacrum).
    """
    if crest_mm is None or len(tops) < 2:
        return None
    holds = np.where((tops - 4.0 <= crest_mm) & (crest_mm <= bottoms + 4.0))[0]
    above = np.where(bottoms < crest_mm)[0]
    index = int(holds[0]) if len(holds) else (int(above[-1]) if len(above) else None)
    if index is None or index >= len(tops) - 1:
        return None
    return index


def find_anchor(landmarks: Landmarks, tops_mm: Sequence[float], bottoms_mm: Sequence[float],
                regular: Optional[Sequence[bool]] = None) -> LevelAnchor:
    """Anchor the level count of detections sorted superior -> inferior (their rows in mm).

    Args:
        landmarks: from :func:`find_landmarks`.
        tops_mm: each detection's top row.
        bottoms_mm: each detection's bottom row.
        regular: per detection, whether the step to the next one skips no vertebra (default all True);
            an anchor across a missed vertebra is not trusted: the 12th rib needs a regular step T12 -> L1,
            the iliac crests regular steps L3 -> L4 -> L5 to anchor or to confirm the rib (they still veto
            it when they disagree). On the abdomen CT resampled to 5 mm slices the crests lay at L4, but
            doubled detections below it made the step from L3 look like a missed vertebra, and the labels
            counted from the crests across it came out T12 L1 L2 L4 (certain and wrong).

    Returns:
        The :class:`LevelAnchor` (anchor None: "levels uncertain").
    """
    tops, bottoms = np.asarray(tops_mm, float), np.asarray(bottoms_mm, float)
    regular_steps = np.ones(len(tops), dtype=bool) if regular is None else np.asarray(regular, dtype=bool)
    bearing = rib_bearing(landmarks, tops, bottoms)
    rib_index, sides = _twelfth_rib(bearing, regular_steps)
    crest_index = _crest_level(_crest_row(landmarks, bearing, tops, bottoms), tops, bottoms)
    # L1-L5 bear no ribs: without a 12th rib to compare with (below), "crests" whose L1 ... L5 would carry a rib
    # are another bone (a scapula beside a thoracic column whose thin ribs were partly missed: a generated chest
    # at 0.9 times the mean size was named L2-S1 with certainty)
    if rib_index is None and crest_index is not None and any(
            True in bearing[k] for k in range(max(crest_index - 3, 0), len(bearing))):
        return LevelAnchor(None, None, None, False, 0.0, "levels uncertain: large bone beside the column like an "
                           "iliac crest, but ribs beside the bodies it would make lumbar", bearing)
    lumbar_from_rib = None if rib_index is None or rib_index < 0 else rib_index + 4  # T12 + 4 = L4
    crest_regular = crest_index is not None and bool(
        regular_steps[crest_index] and (crest_index == 0 or regular_steps[crest_index - 1]))
    if rib_index == -1:
        return LevelAnchor(None, None, None, False, 0.0, "levels uncertain: the last rib lies at different "
                           "vertebrae on the two sides (asymmetric ribs or a transitional vertebra)", bearing)
    if rib_index is not None and crest_index is not None:
        if crest_index == lumbar_from_rib and crest_regular:
            return LevelAnchor("12th rib + iliac crests", rib_index, "T12", True, 0.95,
                               "counted from the 12th rib; the iliac crests at L4 and the sacrum below L5 agree",
                               bearing)
        shift = crest_index - lumbar_from_rib
        if shift == 0:  # they agree, but the crests lie beside a missed or doubled detection: the rib alone
            crest_index = None
    if rib_index is not None and crest_index is not None:
        return LevelAnchor(None, None, None, False, 0.0, f"levels uncertain: the 12th rib and the iliac crests "
                           f"disagree by {abs(shift)} level(s) (11 or 13 rib pairs, or a transitional T13 / L6)",
                           bearing)
    if rib_index is not None and tuple(bearing[rib_index]) != (True, True):
        # one side alone names T12 where the ribs are not seen on both: a 12th rib missed on the side in view (short,
        # taken for a transverse process, or near the edge of the field of view) makes T11 the last rib-bearing
        # body, and every level comes out one off with certainty (the real chest CT cut 15 and 27 mm beside its
        # spine, docs/findings.md "A chest CT cut beside its spine")
        return LevelAnchor(None, None, None, False, 0.0, "levels uncertain: the last rib is seen on one side only "
                           "(the other side's rib beside that body is out of view or not found), so a missed short "
                           "12th rib cannot be ruled out", bearing)
    if rib_index is not None:
        confidence = 0.9 if sides == 2 else 0.8
        return LevelAnchor("12th rib", rib_index, "T12", True, confidence,
                           "counted from the 12th rib (last rib-bearing vertebra, "
                           f"{'both sides' if sides == 2 else 'one side in view'})",
                           bearing)
    if crest_index is not None and crest_regular:
        return LevelAnchor("iliac crests", crest_index, "L4", True, 0.8,
                           "anchored on the sacrum: the iliac crests reach L4, L5 is the last free body above it",
                           bearing)
    if crest_index is not None:
        return LevelAnchor(None, None, None, False, 0.0, "levels uncertain: the iliac crests lie beside a missed "
                           "or doubled detection, the count from them is not sure", bearing)
    return LevelAnchor(None, None, None, False, 0.0, UNCERTAIN_WARNING, bearing)


def anchored_scores(scores: np.ndarray, anchor: LevelAnchor, channels: Sequence[str], order: np.ndarray,
                    strength: float = 5.0) -> np.ndarray:
    """Emission scores with the anchored detection pinned to its level, every other one flat, T13 and L6 refused.

    Args:
        scores: (n, C) emissions in the detections' input order.
        anchor: from :func:`find_anchor` (index into the superior -> inferior order).
        channels: level name of each column.
        order: the sorting permutation (sorted position -> input index).
        strength: reward of the anchored level, penalty of every other one; larger than any sum of
            emission differences the consecutive decoding can trade (emissions lie in [0, 1]).
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    if anchor.index is None or anchor.level not in channels:
        return scores
    # The anatomy decides: the classifier's emissions (trained on generated spines, off by several levels on
    # a real chest CT) would otherwise outweigh keeping a detection and drop it; with flat emissions only the
    # distances between detections (missed vertebrae) and the drop penalty shape the labels around the anchor.
    scores[:] = 0.0
    row = int(order[anchor.index])
    scores[row] = -strength
    scores[row, list(channels).index(anchor.level)] = strength
    # nor do they show a transitional T13 or L6: the decoding took one to trade for a gap's penalty (the sample CT with
    # a wide opacified colon beside L3-L5, bench_colon_grid.py: counted from the 12th rib, named T12 T13 L1 L2 L4 S1)
    from ..levels import TRANSITIONAL

    scores[:, [k for k, name in enumerate(channels) if name in TRANSITIONAL]] = -strength
    return scores


#: The warning of a result whose levels no anatomical anchor fixes. It names the anchors the CT count reads (the first
#: rib, which issue 17 also lists, is not read: on the one real CT here whose top shows T1, the rib band beside C7 lies
#: out of view, so "no rib above T1" could never be observed and such an anchor could not be measured).
UNCERTAIN_WARNING = ("levels uncertain: neither the 12th rib nor the iliac crests (L4, with the sacrum below L5) are "
                     "seen to count from; check the levels")
#: Label confidence lost per level between a vertebra and the anchor (a missed vertebra in between shifts it).
CONFIDENCE_STEP = 0.02
#: Highest label confidence without an anatomical anchor.
UNANCHORED_CONFIDENCE = 0.5


#: A step between two neighbouring detections counts the levels it spans when its length over the column's local
#: level pitch (:func:`counted_from_anchor`) divided by exactly one whole number of levels lies in this range, and
#: that number is the one the labels step by; a step shorter than the range's top hides no missed body and is one
#: level (a body cut by the edge of the view, its centre moved into what is in view: 0.66-0.74 on the sample CT at
#: 5 mm and rolled). One level is 0.86-1.18 of the median of its neighbours on the real chest CT's reference (T1-L1);
#: the detected centres add their scatter. 0.8-1.45 is the radiograph count's range
#: (:data:`..radiograph.sacrum.STEP_RATIO`) read against the pitch of the CT's own column: a gap of one missed body is
#: counted where it spans 1.6-2.4 pitches, of two missed bodies where it spans 2.9-3.2; elsewhere no number fits
#: (1.45-1.6) or more than one does (2.4-2.9: two and three; from 3.2 on: three and four or more), and the levels past
#: it are not counted.
STEP_FIT = (0.8, 1.45)
#: Steps on either side of a gap whose length per level gives its local pitch.
PITCH_WINDOW = 2


def _typical_position(name: str) -> float:
    """Place of ``name`` in the typical count (T13 and L6 half a step past T12 and L5: no whole step of the count)."""
    from ..levels import LEVEL_NAMES, TRANSITIONAL

    typical = [n for n in LEVEL_NAMES if n not in TRANSITIONAL]
    return typical.index(name) if name in typical else typical.index(LEVEL_NAMES[LEVEL_NAMES.index(name) - 1]) + 0.5


def levels_spanned(span: float) -> List[int]:
    """The whole numbers of levels a step of ``span`` local pitches can make (:data:`STEP_FIT`; one level below it)."""
    return [m for m in range(1, 9) if (m == 1 or STEP_FIT[0] <= span / m) and span / m <= STEP_FIT[1]]


def counted_from_anchor(labels: Sequence[str], rows_mm: Sequence[float], anchor_levels: Sequence[str]) -> np.ndarray:
    """Per detection, whether its level is counted from an anchor through steps whose spacing fits their levels.

    The consecutive decoding names the bodies on both sides of a gap with at most :data:`.labelling.MAX_SKIP`
    levels between them, and the number it takes comes from the gap's length: a gap of four missed bodies (a noisy
    chest CT lost T2-T5) was counted as two, and the bodies above it named two levels low with certainty. Each step
    between neighbouring detections is measured against the column's local pitch: the median, over the other steps
    within :data:`PITCH_WINDOW` on either side, of their length per level. The step is counted when its length fits
    exactly one whole number of levels (:func:`levels_spanned`) and that is the number its labels step by; from the
    first step that is not counted, walking away from every anchor, the levels are uncertain. A step with no other
    step to measure it by is counted (the decoding's own reading stands).

    Args:
        labels: decoded level names, superior -> inferior.
        rows_mm: each detection's row along the column (mm), same order.
        anchor_levels: the levels the anatomy names (:attr:`LevelAnchor.anchored_levels`); those not among
            ``labels`` are ignored.

    Returns:
        (n,) bool; all False without an anchor among the labels.
    """
    n = len(labels)
    rows = np.asarray(rows_mm, dtype=np.float64)
    gaps = np.diff(rows)
    levels = np.diff([_typical_position(name) for name in labels])
    counted = np.ones(max(n - 1, 0), dtype=bool)
    for k in range(n - 1):
        others = [j for j in range(max(0, k - PITCH_WINDOW), min(n - 1, k + PITCH_WINDOW + 1))
                  if j != k and levels[j] > 0]
        if not others:
            continue
        pitch = float(np.median([gaps[j] / levels[j] for j in others]))
        counted[k] = levels_spanned(gaps[k] / max(pitch, 1e-6)) == [levels[k]]
    certain = np.zeros(n, dtype=bool)
    for home in [list(labels).index(level) for level in anchor_levels if level in labels]:
        certain[home] = True
        for k in range(home - 1, -1, -1):  # upwards: step k joins detections k and k + 1
            if not counted[k]:
                break
            certain[k] = True
        for k in range(home + 1, n):
            if not counted[k - 1]:
                break
            certain[k] = True
    return certain


def uncertain_report() -> dict:
    """``result.patient["levels"]`` when no anchor was looked for or found."""
    return {"anchor": None, "certain": False, "method": UNCERTAIN_WARNING, "confidence": 0.0}


def anchor_of_detections(ct, curve, keypoints_mm: np.ndarray) -> LevelAnchor:
    """:func:`find_anchor` for detections sorted superior -> inferior, keypoints ``(n, 6, [column, row])`` in mm."""
    from .labelling import expected_skips

    points = np.asarray(keypoints_mm, dtype=np.float64).reshape(-1, 6, 2)
    spine = wide_straightening(ct, curve, CURVE_MARGIN_MM)
    landmarks = find_landmarks(spine.volume, spine.spacing)
    offset = margin_rows_mm(CURVE_MARGIN_MM)
    tops, bottoms = points[:, :, 1].min(axis=1) + offset, points[:, :, 1].max(axis=1) + offset
    regular = np.ones(len(points), dtype=bool)
    if len(points) > 2:
        regular[:-1] = expected_skips(0.5 * (tops + bottoms)) == 0
    return find_anchor(landmarks, tops, bottoms, regular)


def anchored_confidence(labels: Sequence[str], confidence: np.ndarray, anchor: LevelAnchor) -> np.ndarray:
    """Label confidences given the anchor (see :func:`.levelnet.decode_with_classifier`)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    if anchor.index is None or anchor.level is None:
        return np.minimum(confidence, UNANCHORED_CONFIDENCE)
    home = _typical_position(anchor.level)
    steps = np.array([abs(_typical_position(name) - home) for name in labels], dtype=np.float64)
    return np.clip(anchor.confidence - CONFIDENCE_STEP * steps, 0.0, 1.0)
